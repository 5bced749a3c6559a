package attack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"
)

func genMalformed(e *Env) []Batch {
	var b Batch
	raw := func(ct string, body []byte, withMarker bool) {
		r := e.NewRequest("malformed", ContactForm)
		r.Sender = "a@v.test"
		if withMarker {
			body = bytes.ReplaceAll(body, []byte("MARKER"), []byte(r.Marker))
		}
		r.Note = fmt.Sprintf("%s %.60q", ct, body)
		b = append(b, &Attempt{Req: r, ContentType: ct, Body: body, XFF: e.viaProxy(r)})
	}
	// Oversized.
	big := strings.Repeat("A", 70<<10)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + big}), true)
	raw(CTJSON, JSONObject(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + big}), true)
	mp, ct := Multipart(KV{"name", "M"}, KV{"message", "MARKER " + big})
	raw(ct, mp, true)
	raw(CTForm, URLEncoded(KV{"name", strings.Repeat("N", 5000)}, KV{"email", "a@v.test"}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"subject", strings.Repeat("S", 5000)}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", strings.Repeat("a", 300) + "@v.test"}, KV{"message", "MARKER"}), true)
	raw(CTForm, URLEncoded(KV{"name", "M"}, KV{"email", "a@v.test"}, KV{"message", "MARKER " + strings.Repeat("word ", 2000)}), true)
	// Many fields.
	for _, n := range []int{33, 1000, 10000} {
		kvs := []KV{{"name", "M"}, {"email", "a@v.test"}, {"message", "MARKER"}}
		for i := 0; i < n; i++ {
			kvs = append(kvs, KV{fmt.Sprintf("f%d", i), "v"})
		}
		raw(CTForm, URLEncoded(kvs...), true)
	}
	{
		kvs := []KV{{"name", "M"}, {"email", "a@v.test"}, {"message", "MARKER"}}
		for i := 0; i < 10000; i++ {
			kvs = append(kvs, KV{"message", "v"})
		}
		raw(CTForm, URLEncoded(kvs...), true)
	}
	// JSON nesting and shapes.
	raw(CTJSON, []byte(`{"name":"M","message":"MARKER","x":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`), true)
	raw(CTJSON, []byte(strings.Repeat(`{"a":`, 10000)+`1`+strings.Repeat(`}`, 10000)), false)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER","meta":{"a":1}}`), true)
	raw(CTJSON, []byte(`["name","M","message","MARKER"]`), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER"`), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER"} {"to":"x@spam.test"}`), true)
	raw(CTJSON, []byte(`{"name":1e999999,"email":"a@v.test","message":"MARKER"}`), true)
	raw(CTJSON, []byte("\xef\xbb\xbf{\"name\":\"M\",\"email\":\"a@v.test\",\"message\":\"MARKER\"}"), true)
	raw(CTJSON, []byte(`{"name":"M","email":"a@v.test","message":"MARKER \ud800"}`), true)
	// Invalid UTF-8.
	raw(CTForm, []byte("name=M%ff%fe&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name=M\xff\xfe&email=a%40v.test&message=MARKER"), true)
	raw(CTJSON, []byte("{\"name\":\"M\xc3\x28\",\"email\":\"a@v.test\",\"message\":\"MARKER\"}"), true)
	raw(CTForm, []byte("name=M%c0%af&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name=M%ed%a0%80&email=a%40v.test&message=MARKER"), true)
	// Broken urlencoding and multipart.
	raw(CTForm, []byte("name=%zz&email=a%40v.test&message=MARKER"), true)
	raw(CTForm, []byte("name&&&=&email=a%40v.test&message=MARKER"), true)
	raw("multipart/form-data", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nMARKER\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nMARKER"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"; filename=\"a.exe\"\r\nContent-Type: application/octet-stream\r\n\r\nMZ MARKER\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\nMARKER\r\n--y--\r\n--x--\r\n"), true)
	raw("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nM\r\n--x\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTUFSS0VS\r\n--x--\r\n"), false)
	raw("multipart/form-data; boundary="+strings.Repeat("b", 5000), []byte("--x--"), false)
	// Truncated: Content-Length promises more than is sent.
	for _, n := range []int{1, 100, 60000} {
		n := n
		r := e.NewRequest("malformed", ContactForm)
		r.Client = e.FreshIPv4()
		ip := r.Client
		marker := r.Marker
		b = append(b, &Attempt{Req: r, Raw: func(ctx context.Context, addr string) (int, string) {
			body := "name=M&email=a%40v.test&message=" + marker
			req := fmt.Sprintf("POST /f/%s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nX-Forwarded-For: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
				ContactForm, addr, addr, ip, CTForm, len(body)+n, body)
			return rawExchange(ctx, addr, "", req, true, 10*time.Second)
		}})
	}
	e.Shuffle(b)
	return []Batch{b}
}

func genSlow(e *Env) []Batch {
	var b Batch
	// Every slow client is bounded: it gives up after maxHold. The service
	// must cut it off first (read_header_timeout 2s, read_timeout 4s in the
	// generated config).
	const maxHold = 12 * time.Second
	for _, part := range []string{"header", "body"} {
		for i := 0; i < 4; i++ {
			r := e.NewRequest("slow-client", ContactForm)
			r.Client = e.FreshPeer()
			peer := r.Client
			b = append(b, &Attempt{Req: r, Raw: func(ctx context.Context, addr string) (int, string) {
				return slowloris(ctx, addr, peer, part, maxHold)
			}})
		}
	}
	// Legitimate visitors keep being served meanwhile.
	for i := 0; i < 3; i++ {
		b = append(b, e.LegitContact("slow-client", EncForm))
	}
	return []Batch{b}
}
