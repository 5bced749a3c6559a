package guard_test

import (
	"context"
	"encoding/json"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time      { return c.t }
func (c *clock) Add(d time.Duration) { c.t = c.t.Add(d) }
func quiet() *slog.Logger            { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func testConfig(c *clock) guard.Config {
	return guard.Config{
		Domain:         "example.test",
		Origins:        []string{"https://example.test", "http://127.0.0.1:8080"},
		TrustedProxies: []string{"10.0.0.0/8"},
		Now:            c.Now,
		Logger:         quiet(),
		KeySecret:      []byte("0123456789abcdef0123456789abcdef"),
		Forms: map[string]guard.Form{
			"contact": {To: []string{"support@example.test"}},
			"sales": {
				Choices: map[string][]string{"sales": {"sales@example.test"}, "press": {"press@example.test", "pr@example.test"}},
			},
			"share": {Kind: post.Share, MaxRecipients: 3, AllowNoBotDefence: true, DenyRecipientDomains: []string{"denied.test"}},
			"api":   {To: []string{"api@example.test"}, AllowMissingOrigin: true},
			"pages": {To: []string{"a@example.test"}, SuccessURL: "/thanks", ErrorURL: "https://example.test/oops"},
		},
	}
}

func newGuard(t testing.TB, mod ...func(*guard.Config)) (*guard.Guard, *clock) {
	t.Helper()
	c := &clock{t0}
	cfg := testConfig(c)
	for _, m := range mod {
		m(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, c
}

const urlenc = "application/x-www-form-urlencoded"

type req struct {
	method, path, ct, body, remote string
	hdr                            map[string]string
}

func (q req) build() *http.Request {
	if q.path == "" {
		q.path = "/f/form"
	}
	if q.method == "" {
		q.method = http.MethodPost
	}
	if q.ct == "" {
		q.ct = urlenc
	}
	r := httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
	r.Header.Set("Content-Type", q.ct)
	r.Header.Set("Origin", "https://example.test")
	r.RemoteAddr = "192.0.2.10:4711"
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	for k, v := range q.hdr {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	return r
}

func contact(extra ...string) string {
	return form(append([]string{"name", "Ada Lovelace", "email", "ada@example.org", "subject", "Hello", "message", "Hi there,\nhow are you?"}, extra...)...)
}

func contactFrom(email string) string {
	return form("name", "Ada", "email", email, "message", "Hi")
}

func share(extra ...string) string {
	return form(append([]string{"name", "Ada", "to", "bob@example.org", "url", "https://example.test/post/1", "message", "Thought you'd like this."}, extra...)...)
}

// TestPolicy is the guard's policy matrix: one row per rule, named as a
// sentence, each asserting the exact error code (or acceptance).
func TestPolicy(t *testing.T) {
	mp := func(fields [][2]string, file bool) (string, string) {
		var b strings.Builder
		for _, f := range fields {
			b.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"" + f[0] + "\"\r\n\r\n" + f[1] + "\r\n")
		}
		if file {
			b.WriteString("--XyZ\r\nContent-Disposition: form-data; name=\"att\"; filename=\"a.exe\"\r\nContent-Type: application/octet-stream\r\n\r\nMZ\r\n")
		}
		b.WriteString("--XyZ--\r\n")
		return "multipart/form-data; boundary=XyZ", b.String()
	}
	mpCT, mpBody := mp([][2]string{{"name", "Ada"}, {"email", "ada@example.org"}, {"message", "hello"}}, false)
	_, mpFile := mp([][2]string{{"name", "Ada"}, {"email", "ada@example.org"}, {"message", "hello"}}, true)
	many := make([]string, 0, 200)
	for i := 0; i < 100; i++ {
		many = append(many, "f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), "1")
	}

	tests := []struct {
		name  string
		form  string
		req   req
		code  string // "" means accepted
		check func(t *testing.T, s *post.Submission)
	}{
		{name: "valid contact post is accepted", form: "contact", req: req{body: contact()}, check: func(t *testing.T, s *post.Submission) {
			if s.ReplyTo != "ada@example.org" || s.Name != "Ada Lovelace" || s.Subject != "Hello" {
				t.Errorf("submission = %+v", s)
			}
			if len(s.Recipients) != 1 || s.Recipients[0] != "support@example.test" {
				t.Errorf("recipients = %v", s.Recipients)
			}
			if s.ID == "" || !s.Received.Equal(t0) || s.ClientIP != netip.MustParseAddr("192.0.2.10") || s.ClientKey == "" {
				t.Errorf("metadata = %q %v %v %q", s.ID, s.Received, s.ClientIP, s.ClientKey)
			}
		}},
		{name: "contact post as JSON is accepted", form: "contact", req: req{ct: "application/json", body: `{"name":"Ada","email":"ada@example.org","message":"hi"}`}},
		{name: "contact post as multipart is accepted", form: "contact", req: req{ct: mpCT, body: mpBody}},
		{name: "multipart post with a file part is refused", form: "contact", req: req{ct: mpCT, body: mpFile}, code: "files_not_allowed"},
		{name: "GET is refused", form: "contact", req: req{method: http.MethodGet}, code: "method_not_allowed"},
		{name: "unknown form is refused", form: "nope", req: req{body: contact()}, code: "unknown_form"},
		{name: "declared body over the cap is refused before reading", form: "contact", req: req{body: contact("message", strings.Repeat("x", 70<<10))}, code: "body_too_large"},
		{name: "text/plain body is refused", form: "contact", req: req{ct: "text/plain", body: "hi"}, code: "unsupported_content_type"},
		{name: "missing content type is refused", form: "contact", req: req{hdr: map[string]string{"Content-Type": ""}, body: contact()}, code: "unsupported_content_type"},
		{name: "post from another origin is refused", form: "contact", req: req{hdr: map[string]string{"Origin": "https://evil.test"}, body: contact()}, code: "bad_origin"},
		{name: "post with Origin null is refused", form: "contact", req: req{hdr: map[string]string{"Origin": "null"}, body: contact()}, code: "bad_origin"},
		{name: "post with only an allowed Referer is accepted", form: "contact", req: req{hdr: map[string]string{"Origin": "", "Referer": "http://127.0.0.1:8080/contact.html"}, body: contact()}},
		{name: "post with only an off-site Referer is refused", form: "contact", req: req{hdr: map[string]string{"Origin": "", "Referer": "https://example.test.evil.test/"}, body: contact()}, code: "bad_origin"},
		{name: "post with neither Origin nor Referer is refused", form: "contact", req: req{hdr: map[string]string{"Origin": ""}, body: contact()}, code: "bad_origin"},
		{name: "form that opts out accepts a post without Origin", form: "api", req: req{hdr: map[string]string{"Origin": ""}, body: contact()}},
		{name: "filled honeypot is answered like success", form: "contact", req: req{body: contact("_gotcha", "buy now")}, code: "honeypot"},
		{name: "empty honeypot is fine", form: "contact", req: req{body: contact("_gotcha", "")}},
		{name: "from field is refused", form: "contact", req: req{body: contact("from", "ceo@example.test")}, code: "forbidden_field"},
		{name: "_cc field is refused", form: "contact", req: req{body: contact("_cc", "x@evil.test")}, code: "forbidden_field"},
		{name: "Bcc JSON key is refused", form: "contact", req: req{ct: "application/json", body: `{"name":"Ada","email":"ada@example.org","message":"hi","Bcc":"x@evil.test"}`}, code: "forbidden_field"},
		{name: "_replyto field is refused", form: "contact", req: req{body: contact("_replyto", "x@evil.test")}, code: "forbidden_field"},
		{name: "sender field is refused", form: "contact", req: req{body: contact("Sender", "x@evil.test")}, code: "forbidden_field"},
		{name: "contact form with a to field is refused", form: "contact", req: req{body: contact("to", "victim@evil.test")}, code: "forbidden_field"},
		{name: "unknown field is refused", form: "contact", req: req{body: contact("phone", "123")}, code: "unknown_field"},
		{name: "duplicate name field is refused", form: "contact", req: req{body: contact("name", "Eve")}, code: "duplicate_field"},
		{name: "duplicate JSON key is refused", form: "contact", req: req{ct: "application/json", body: `{"name":"Ada","name":"Eve","email":"ada@example.org","message":"hi"}`}, code: "duplicate_field"},
		{name: "nested JSON is refused", form: "contact", req: req{ct: "application/json", body: `{"name":{"a":"b"},"email":"ada@example.org","message":"hi"}`}, code: "malformed_body"},
		{name: "JSON number is refused", form: "contact", req: req{ct: "application/json", body: `{"name":1,"email":"ada@example.org","message":"hi"}`}, code: "malformed_body"},
		{name: "truncated JSON is refused", form: "contact", req: req{ct: "application/json", body: `{"name":"Ada","email":"ada@exa`}, code: "malformed_body"},
		{name: "a hundred fields are refused", form: "contact", req: req{body: form(many...)}, code: "malformed_body"},
		{name: "name with CRLF is refused", form: "contact", req: req{body: form("name", "Ada\r\nBcc: x@evil.test", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "name with encoded CRLF is refused", form: "contact", req: req{body: form("name", "=?utf-8?q?x=0D=0ABcc:_a@b?=", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "subject with a lone LF is refused", form: "contact", req: req{body: form("name", "Ada", "subject", "a\nb", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "subject with a lone CR is refused", form: "contact", req: req{body: form("name", "Ada", "subject", "a\rb", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "subject with percent-encoded CRLF is refused", form: "contact", req: req{body: "name=Ada&subject=a%250D%250Ab&email=ada%40example.org&message=hi"}, code: "header_injection"},
		{name: "name with U+2028 is refused", form: "contact", req: req{body: form("name", "Ada\u2028Bcc: x", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "name with NUL is refused", form: "contact", req: req{body: form("name", "Ada\x00", "email", "ada@example.org", "message", "hi")}, code: "header_injection"},
		{name: "email with CRLF is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org\r\nBcc: x@evil.test", "message", "hi")}, code: "header_injection"},
		{name: "message with NUL is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "hi\x00")}, code: "invalid_field"},
		{name: "message with line breaks is accepted", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "line 1\r\nline 2\n")}},
		{name: "invalid UTF-8 in the message is refused", form: "contact", req: req{body: "name=Ada&email=ada%40example.org&message=%ff%fe"}, code: "malformed_body"},
		{name: "invalid UTF-8 in JSON is refused", form: "contact", req: req{ct: "application/json", body: "{\"name\":\"Ada\xff\",\"email\":\"ada@example.org\",\"message\":\"hi\"}"}, code: "malformed_body"},
		{name: "email with a display name is refused", form: "contact", req: req{body: form("name", "Ada", "email", "Ada <ada@example.org>", "message", "hi")}, code: "invalid_email"},
		{name: "email over the RFC 5321 length is refused", form: "contact", req: req{body: form("name", "Ada", "email", strings.Repeat("a", 65)+"@example.org", "message", "hi")}, code: "invalid_email"},
		{name: "contact post without an email is refused", form: "contact", req: req{body: form("name", "Ada", "message", "hi")}, code: "invalid_email"},
		{name: "contact post without a message is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org")}, code: "invalid_field"},
		{name: "overlong name is refused", form: "contact", req: req{body: form("name", strings.Repeat("é", 101), "email", "ada@example.org", "message", "hi")}, code: "invalid_field"},
		{name: "name with an at sign is refused", form: "contact", req: req{body: form("name", "ceo@bank.example", "email", "ada@example.org", "message", "hi")}, code: "invalid_field"},
		{name: "name with a fullwidth at sign is refused", form: "contact", req: req{body: form("name", "ceo\uff20bank.example", "email", "ada@example.org", "message", "hi")}, code: "invalid_field"},
		{name: "name with a small commercial at is refused", form: "contact", req: req{body: form("name", "ceo\ufe6bbank.example", "email", "ada@example.org", "message", "hi")}, code: "invalid_field"},
		{name: "name with fullwidth angle brackets is refused", form: "contact", req: req{body: form("name", "CEO \uff1cboss\uff1e", "email", "ada@example.org", "message", "hi")}, code: "invalid_field"},
		{name: "share form name with a fullwidth at sign is refused", form: "share", req: req{body: form("name", "ceo\uff20bank.example", "to", "a@x.test", "url", "https://example.test/")}, code: "invalid_field"},
		{name: "name with accents and marks is accepted", form: "contact", req: req{body: form("name", "Zo\u00eb \u00c5ngstr\u00f6m-N\u0303u\u00f1ez", "email", "ada@example.org", "message", "hi")}, check: func(t *testing.T, s *post.Submission) {
			if s.Name != "Zo\u00eb \u00c5ngstr\u00f6m-N\u0303u\u00f1ez" {
				t.Errorf("Name = %q", s.Name)
			}
		}},
		{name: "visitor email with a percent source route is refused", form: "contact", req: req{body: contactFrom("a%evil.test@example.org")}, code: "invalid_email"},
		{name: "visitor email with a bang path is refused", form: "contact", req: req{body: contactFrom("evil.test!a@example.org")}, code: "invalid_email"},
		{name: "IDN email is normalised to punycode", form: "contact", req: req{body: form("name", "Ada", "email", "ada@Bücher.example", "message", "hi")}, check: func(t *testing.T, s *post.Submission) {
			if s.ReplyTo != "ada@xn--bcher-kva.example" {
				t.Errorf("ReplyTo = %q", s.ReplyTo)
			}
		}},
		{name: "message with four links is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "http://a.test https://b.test www.c.test https://www.d.test")}, code: "too_many_links"},
		{name: "message with three links is accepted", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "http://a.test https://b.test https://www.d.test")}},
		{name: "message with four bare domains is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "evil.com, evil.net and EVIL.ORG or evil.example/login")}, code: "too_many_links"},
		{name: "message with four IP literals is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "1.2.3.4/x 5.6.7.8 [::1] [2001:db8::1]")}, code: "too_many_links"},
		{name: "message with four full-width or scheme-relative links is refused", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "\uff48\uff54\uff54\uff50\uff53\uff1a\uff0f\uff0fevil\uff0ecom //evil.test/x xn--bcher-kva.example evil\u3002net")}, code: "too_many_links"},
		{name: "message with abbreviations, numbers and file names is accepted", form: "contact", req: req{body: form("name", "Ada", "email", "ada@example.org", "message", "Hi, e.g. version 3.5 (i.e. the U.S. build) breaks at 10 a.m. on index.html. Next, Node.js fails. Thanks.")}},
		{name: "contact choice picks the press list", form: "sales", req: req{body: contact("department", "press")}, check: func(t *testing.T, s *post.Submission) {
			if strings.Join(s.Recipients, ",") != "press@example.test,pr@example.test" {
				t.Errorf("recipients = %v", s.Recipients)
			}
		}},
		{name: "unknown contact choice is refused", form: "sales", req: req{body: contact("department", "victim@evil.test")}, code: "invalid_recipient"},
		{name: "missing contact choice is refused", form: "sales", req: req{body: contact()}, code: "no_recipient"},
		{name: "share form with one recipient is accepted", form: "share", req: req{body: share()}, check: func(t *testing.T, s *post.Submission) {
			if s.Kind != post.Share || len(s.Recipients) != 1 || s.Recipients[0] != "bob@example.org" || s.URL != "https://example.test/post/1" || s.Subject != "" {
				t.Errorf("submission = %+v", s)
			}
		}},
		{name: "share form with three comma-separated recipients is accepted", form: "share", req: req{body: form("to", "a@x.test, b@x.test,c@x.test", "url", "https://example.test/")}},
		{name: "share form with four recipients is refused", form: "share", req: req{body: form("to", "a@x.test", "to", "b@x.test", "to", "c@x.test", "to", "d@x.test", "url", "https://example.test/")}, code: "too_many_recipients"},
		{name: "share form with four recipients as a JSON array is refused", form: "share", req: req{ct: "application/json", body: `{"to":["a@x.test","b@x.test","c@x.test","d@x.test"],"url":"https://example.test/"}`}, code: "too_many_recipients"},
		{name: "repeated recipients are deduplicated and normalised", form: "share", req: req{body: form("to", "Bob@EXAMPLE.org", "to", "Bob@example.org", "to", "x@Bücher.example", "url", "https://example.test/")}, check: func(t *testing.T, s *post.Submission) {
			if strings.Join(s.Recipients, ",") != "Bob@example.org,x@xn--bcher-kva.example" {
				t.Errorf("recipients = %v", s.Recipients)
			}
		}},
		{name: "share recipient with a display name is refused", form: "share", req: req{body: form("to", `"Bob" <bob@example.org>`, "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient with a percent-encoded NUL in its local part is refused", form: "share", req: req{body: form("to", "bob%00@example.org", "url", "https://example.test/")}, code: "header_injection"},
		{name: "share recipient with an encoded word as its local part is refused", form: "share", req: req{body: form("to", "=?utf-8?q?bob?=@example.org", "url", "https://example.test/")}, code: "header_injection"},
		{name: "share recipient in group syntax is refused", form: "share", req: req{body: form("to", "friends: a@x.test, b@x.test;", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "semicolon-separated recipients are refused", form: "share", req: req{body: form("to", "a@x.test;b@x.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "recipient with a newline is refused", form: "share", req: req{body: form("to", "a@x.test\nb@x.test", "url", "https://example.test/")}, code: "header_injection"},
		{name: "recipient with a comment is refused", form: "share", req: req{body: form("to", "a(c)@x.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "recipient with a source route is refused", form: "share", req: req{body: form("to", "@relay.test:a@x.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "recipient on a denied domain is refused", form: "share", req: req{body: form("to", "a@mx.denied.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's own domain is refused", form: "share", req: req{body: form("to", "ceo@example.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's domain in capitals with a trailing dot is refused", form: "share", req: req{body: form("to", "CEO@EXAMPLE.TEST.", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on a subdomain of the site is refused", form: "share", req: req{body: form("to", "hr@mail.example.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's domain with a full-width dot is refused", form: "share", req: req{body: form("to", "ceo@example\uff0etest", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's domain with an ideographic dot is refused", form: "share", req: req{body: form("to", "ceo@example\u3002test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's domain with a halfwidth ideographic dot is refused", form: "share", req: req{body: form("to", "ceo@mail\uff61example.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on the site's domain in full-width letters is refused", form: "share", req: req{body: form("to", "ceo@\uff25xample.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient next to the site's own among others is refused", form: "share", req: req{body: form("to", "a@x.test, ceo@example.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient whose domain only ends like the site's is accepted", form: "share", req: req{body: form("to", "a@myexample.test", "url", "https://example.test/")}},
		{name: "share recipient with an invalid punycode label is refused", form: "share", req: req{body: form("to", "a@xn--zz.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient on an IDN with a full-width dot is mailed in ASCII", form: "share", req: req{body: form("to", "x@B\u00fccher\uff0eexample", "url", "https://example.test/")}, check: func(t *testing.T, s *post.Submission) {
			if strings.Join(s.Recipients, ",") != "x@xn--bcher-kva.example" {
				t.Errorf("recipients = %v", s.Recipients)
			}
		}},
		{name: "share recipient with a percent source route past the deny list is refused", form: "share", req: req{body: form("to", "a%mx.denied.test@x.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share recipient with a bang path past the deny list is refused", form: "share", req: req{body: form("to", "denied.test!a@x.test", "url", "https://example.test/")}, code: "invalid_recipient"},
		{name: "share form without recipients is refused", form: "share", req: req{body: form("url", "https://example.test/")}, code: "no_recipient"},
		{name: "share note with a link is refused", form: "share", req: req{body: share("message", "see https://spam.test")}, code: "duplicate_field"},
		{name: "share note containing a link is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/", "message", "see https://spam.test")}, code: "too_many_links"},
		{name: "shared url off the site is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://spam.test/")}, code: "offsite_url"},
		{name: "shared url with credentials is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://user@example.test/")}, code: "offsite_url"},
		{name: "shared url query and fragment are dropped", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/post/1?utm_source=x#comments")}, check: func(t *testing.T, s *post.Submission) {
			if s.URL != "https://example.test/post/1" {
				t.Errorf("URL = %q", s.URL)
			}
		}},
		{name: "shared url query carrying text and a link never reaches the mail", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/search?q= Your account is locked. Unlock it at https://evil.example/login")}, check: func(t *testing.T, s *post.Submission) {
			if s.URL != "https://example.test/search" {
				t.Errorf("URL = %q", s.URL)
			}
		}},
		{name: "shared url path with encoded spaces is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/Your%20account%20is%20locked")}, code: "offsite_url"},
		{name: "shared url path naming another host is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/go/evil.example/login")}, code: "offsite_url"},
		{name: "shared url path carrying a scheme is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/r/https:%2F%2Fevil.test")}, code: "offsite_url"},
		{name: "shared url path with an at sign is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/@evil.test")}, code: "offsite_url"},
		{name: "shared url path with a right-to-left override is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/%E2%80%AEtxt.exe")}, code: "offsite_url"},
		{name: "shared url to an html page is kept", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/blog/2026/post-3.5.html")}, check: func(t *testing.T, s *post.Submission) {
			if s.URL != "https://example.test/blog/2026/post-3.5.html" {
				t.Errorf("URL = %q", s.URL)
			}
		}},
		{name: "share note with a bare domain is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/", "message", "see evil.com")}, code: "too_many_links"},
		{name: "share note with a full-width link is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/", "message", "\uff45\uff56\uff49\uff4c\uff0e\uff43\uff4f\uff4d")}, code: "too_many_links"},
		{name: "share note with ordinary punctuation is accepted", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/", "message", "Great read, e.g. part 3.5. Next week?")}},
		{name: "share form subject field is refused", form: "share", req: req{body: form("to", "a@x.test", "url", "https://example.test/", "subject", "WIN")}, code: "unknown_field"},
		{name: "XFF from an untrusted peer is ignored", form: "contact", req: req{hdr: map[string]string{"X-Forwarded-For": "203.0.113.9"}, body: contact()}, check: func(t *testing.T, s *post.Submission) {
			if s.ClientIP != netip.MustParseAddr("192.0.2.10") {
				t.Errorf("client = %v", s.ClientIP)
			}
		}},
		{name: "XFF through a trusted proxy names the rightmost untrusted hop", form: "contact", req: req{remote: "10.1.2.3:999", hdr: map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.9.9.9"}, body: contact()}, check: func(t *testing.T, s *post.Submission) {
			if s.ClientIP != netip.MustParseAddr("203.0.113.9") {
				t.Errorf("client = %v", s.ClientIP)
			}
		}},
		{name: "malformed XFF hop through a trusted proxy is refused", form: "contact", req: req{remote: "10.1.2.3:999", hdr: map[string]string{"X-Forwarded-For": "203.0.113.9, bogus"}, body: contact()}, code: "bad_client_address"},
		{name: "IPv4-mapped IPv6 peer is folded to IPv4", form: "contact", req: req{remote: "[::ffff:192.0.2.77]:1", body: contact()}, check: func(t *testing.T, s *post.Submission) {
			if s.ClientIP != netip.MustParseAddr("192.0.2.77") {
				t.Errorf("client = %v", s.ClientIP)
			}
		}},
		{name: "off-site _next redirect is refused", form: "contact", req: req{body: contact("_next", "https://evil.test/")}, code: "offsite_redirect"},
		{name: "protocol-relative _next redirect is refused", form: "contact", req: req{body: contact("_next", "//evil.test/")}, code: "offsite_redirect"},
		{name: "same-site _next redirect is kept", form: "contact", req: req{body: contact("_next", "/thanks")}, check: func(t *testing.T, s *post.Submission) {
			if s.Next != "/thanks" {
				t.Errorf("Next = %q", s.Next)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := newGuard(t)
			r := tt.req.build()
			w := httptest.NewRecorder()
			s, err := g.CheckForm(w, r, tt.form)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tt.check != nil {
					tt.check(t, s)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v, want %s", s, tt.code)
			}
			if s != nil {
				t.Errorf("submission returned with error")
			}
			if got := guard.AsError(err).Code; got != tt.code {
				t.Fatalf("code = %s, want %s (%v)", got, tt.code, err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	g, _ := newGuard(t)
	var got *post.Submission
	h := g.Middleware("contact")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := guard.SubmissionFrom(r.Context())
		if !ok {
			t.Error("no submission in context")
		}
		got = s
		guard.WriteSuccess(w, r, s)
	}))
	t.Run("accepted post reaches the wrapped handler", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact(), hdr: map[string]string{"Accept": "application/json"}}.build())
		if w.Code != 200 || got == nil || !strings.Contains(w.Body.String(), got.ID) {
			t.Fatalf("status %d body %q", w.Code, w.Body)
		}
	})
	t.Run("rejection is problem+json with a stable code", func(t *testing.T) {
		got = nil
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact("from", "x@evil.test"), hdr: map[string]string{"Accept": "application/json"}}.build())
		var p struct {
			Code   string `json:"code"`
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if w.Code != 400 || p.Code != "forbidden_field" || p.Status != 400 || got != nil {
			t.Fatalf("status %d problem %+v", w.Code, p)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("content type %q", ct)
		}
		if strings.Contains(w.Body.String(), "evil") {
			t.Errorf("cause leaked to client: %s", w.Body)
		}
	})
	t.Run("honeypot hit looks exactly like success and never reaches the handler", func(t *testing.T) {
		got = nil
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact("_gotcha", "x"), hdr: map[string]string{"Accept": "application/json"}}.build())
		if w.Code != 200 || got != nil || !strings.Contains(w.Body.String(), `"ok":true`) {
			t.Fatalf("status %d body %s, reached=%v", w.Code, w.Body, got != nil)
		}
	})
	t.Run("HTML post rejection is a small page without the cause", func(t *testing.T) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact("name", "x\r\nBcc: a@evil.test")}.build())
		if w.Code != 400 || !strings.Contains(w.Header().Get("Content-Type"), "text/html") || strings.Contains(w.Body.String(), "evil") {
			t.Fatalf("status %d body %s", w.Code, w.Body)
		}
	})
	t.Run("ErrorHandler can read the reason", func(t *testing.T) {
		var reason string
		g2, _ := newGuard(t, func(c *guard.Config) {
			c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, e *guard.Error) {
				re, _ := guard.Reason(r)
				reason = re.Code
				w.WriteHeader(e.Status)
			}
		})
		w := httptest.NewRecorder()
		g2.Middleware("contact")(http.NotFoundHandler()).ServeHTTP(w, req{method: "PUT"}.build())
		if reason != "method_not_allowed" || w.Code != 405 {
			t.Fatalf("reason %q code %d", reason, w.Code)
		}
	})
	t.Run("plain HTML posts are redirected to same-site pages", func(t *testing.T) {
		h := g.Middleware("pages")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, _ := guard.SubmissionFrom(r.Context())
			guard.WriteSuccess(w, r, s)
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact()}.build())
		if w.Code != 303 || w.Header().Get("Location") != "/thanks" {
			t.Fatalf("success: %d %q", w.Code, w.Header().Get("Location"))
		}
		w = httptest.NewRecorder()
		h.ServeHTTP(w, req{body: contact("bcc", "x@y.test")}.build())
		if w.Code != 303 || w.Header().Get("Location") != "https://example.test/oops?error=forbidden_field" {
			t.Fatalf("error: %d %q", w.Code, w.Header().Get("Location"))
		}
	})
	t.Run("Handler panics for an unknown form", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		g.Middleware("missing")(http.NotFoundHandler())
	})
}

func TestRateLimits(t *testing.T) {
	post := func(g *guard.Guard, f, remote, body string) (*httptest.ResponseRecorder, error) {
		w := httptest.NewRecorder()
		_, err := g.CheckForm(w, req{remote: remote, body: body}.build(), f)
		return w, err
	}
	t.Run("sixth post from one IP in an hour is refused with Retry-After", func(t *testing.T) {
		g, c := newGuard(t)
		for i := 0; i < 5; i++ {
			if _, err := post(g, "contact", "192.0.2.1:1", contactFrom("a"+string(rune('a'+i))+"@example.org")); err != nil {
				t.Fatalf("post %d: %v", i, err)
			}
		}
		w, err := post(g, "contact", "192.0.2.1:1", contactFrom("z@example.org"))
		e := guard.AsError(err)
		if err == nil || e.Code != "rate_limited" || e.Status != 429 || e.RetryAfter <= 0 || e.RetryAfter > 12*time.Minute {
			t.Fatalf("err = %v retry %v", err, e.RetryAfter)
		}
		if w.Header().Get("Retry-After") == "" {
			t.Errorf("no Retry-After header")
		}
		if _, err := post(g, "contact", "192.0.2.2:1", contactFrom("y@example.org")); err != nil {
			t.Errorf("another IP refused: %v", err)
		}
		key := g.ClientKey(netip.MustParseAddr("192.0.2.1"))
		if f := g.Escalate(key); f != guard.EscalateFactor {
			t.Errorf("Escalate for a limited client = %d", f)
		}
		if f := g.Escalate(g.ClientKey(netip.MustParseAddr("192.0.2.2"))); f != 1 {
			t.Errorf("Escalate for a quiet client = %d", f)
		}
		c.Add(e.RetryAfter)
		if _, err := post(g, "contact", "192.0.2.1:1", contactFrom("z@example.org")); err != nil {
			t.Errorf("after Retry-After: %v", err)
		}
		c.Add(guard.EscalateWindow)
		if f := g.Escalate(key); f != 1 {
			t.Errorf("Escalate after the window = %d", f)
		}
	})
	t.Run("addresses inside one IPv6 /64 share a budget", func(t *testing.T) {
		g, _ := newGuard(t)
		for i := 0; i < 5; i++ {
			remote := "[2001:db8:1:2::" + string(rune('1'+i)) + "]:1"
			if _, err := post(g, "contact", remote, contactFrom("a"+string(rune('a'+i))+"@example.org")); err != nil {
				t.Fatalf("post %d: %v", i, err)
			}
		}
		if _, err := post(g, "contact", "[2001:db8:1:2:ffff::9]:1", contactFrom("q@example.org")); !isCode(err, "rate_limited") {
			t.Fatalf("rotating inside the /64: %v", err)
		}
		if _, err := post(g, "contact", "[2001:db8:1:3::1]:1", contactFrom("q@example.org")); err != nil {
			t.Fatalf("next /64: %v", err)
		}
	})
	t.Run("one Reply-To address is limited across IPs", func(t *testing.T) {
		g, _ := newGuard(t)
		for i := 0; i < 3; i++ {
			if _, err := post(g, "contact", "192.0.2."+string(rune('1'+i))+":1", contact()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := post(g, "contact", "192.0.2.9:1", contact()); !isCode(err, "rate_limited") {
			t.Fatalf("fourth from one sender: %v", err)
		}
	})
	t.Run("one recipient is limited across IPs and a refused post consumes nothing", func(t *testing.T) {
		g, _ := newGuard(t)
		for i := 0; i < 2; i++ {
			if _, err := post(g, "share", "192.0.2."+string(rune('1'+i))+":1", share()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := post(g, "share", "192.0.2.7:1", form("to", "bob@example.org, carol@example.org", "url", "https://example.test/")); !isCode(err, "rate_limited") {
			t.Fatalf("third to bob: %v", err)
		}
		// carol's budget was not touched by the refused post: she can get two.
		for i := 0; i < 2; i++ {
			if _, err := post(g, "share", "192.0.2.8:1", form("to", "carol@example.org", "url", "https://example.test/")); err != nil {
				t.Fatalf("carol %d: %v", i, err)
			}
		}
	})
	t.Run("locally rejected posts consume no budget", func(t *testing.T) {
		g, _ := newGuard(t)
		for i := 0; i < 20; i++ {
			if _, err := post(g, "contact", "192.0.2.1:1", contact("phone", "1")); !isCode(err, "unknown_field") {
				t.Fatal(err)
			}
		}
		if _, err := post(g, "contact", "192.0.2.1:1", contact()); err != nil {
			t.Fatalf("after rejected posts: %v", err)
		}
	})
	t.Run("repeated injection attempts get the client banned", func(t *testing.T) {
		g, c := newGuard(t)
		for i := 0; i < 10; i++ {
			if _, err := post(g, "contact", "192.0.2.1:1", contact("bcc", "x@y.test")); !isCode(err, "forbidden_field") {
				t.Fatal(err)
			}
		}
		_, err := post(g, "contact", "192.0.2.1:1", contact())
		if !isCode(err, "banned") || guard.AsError(err).RetryAfter <= 0 {
			t.Fatalf("after attacks: %v", err)
		}
		if _, err := post(g, "contact", "192.0.2.2:1", contact()); err != nil {
			t.Fatalf("another client: %v", err)
		}
		c.Add(guard.AsError(err).RetryAfter + time.Second)
		if _, err := post(g, "contact", "192.0.2.1:1", contactFrom("later@example.org")); err != nil {
			t.Fatalf("after the ban: %v", err)
		}
	})
	t.Run("store errors fail closed", func(t *testing.T) {
		g, _ := newGuard(t, func(c *guard.Config) { c.Store = failingStore{} })
		if _, err := post(g, "contact", "192.0.2.1:1", contact()); !isCode(err, "limiter_unavailable") {
			t.Fatalf("err = %v", err)
		}
	})
}

type failingStore struct{}

func (failingStore) Allow(ctx context.Context, r []ratelimit.Rule) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, io.ErrUnexpectedEOF
}
func (failingStore) Close() error { return nil }

func isCode(err error, code string) bool { return err != nil && guard.AsError(err).Code == code }

func TestNewRejectsBadConfig(t *testing.T) {
	base := func() guard.Config { return testConfig(&clock{t0}) }
	tests := []struct {
		name string
		mod  func(*guard.Config)
		want string
	}{
		{"missing domain is refused", func(c *guard.Config) { c.Domain = "" }, "guard: Domain"},
		{"missing origins are refused", func(c *guard.Config) { c.Origins = nil }, "guard: Origins"},
		{"origin with a path is refused", func(c *guard.Config) { c.Origins = []string{"https://x.test/path"} }, "guard: origin"},
		{"bad proxy CIDR is refused", func(c *guard.Config) { c.TrustedProxies = []string{"10.0.0.0/33"} }, "guard: trusted proxy"},
		{"no forms are refused", func(c *guard.Config) { c.Forms = nil }, "guard: Forms"},
		{"contact form without recipients is refused", func(c *guard.Config) { c.Forms = map[string]guard.Form{"c": {}} }, "needs To or Choices"},
		{"contact form with a bad recipient is refused", func(c *guard.Config) { c.Forms = map[string]guard.Form{"c": {To: []string{"A <a@b.test>"}}} }, "recipient"},
		{"share form without bot defence is refused", func(c *guard.Config) { c.Forms = map[string]guard.Form{"s": {Kind: post.Share}} }, "needs a Captcha or Token"},
		{"share form with fixed recipients is refused", func(c *guard.Config) {
			c.Forms = map[string]guard.Form{"s": {Kind: post.Share, To: []string{"a@b.test"}, AllowNoBotDefence: true}}
		}, "To and Choices are for contact forms"},
		{"extra field named from is refused", func(c *guard.Config) {
			c.Forms = map[string]guard.Form{"c": {To: []string{"a@b.test"}, ExtraFields: []string{"from"}}}
		}, "extra field"},
		{"renamed email field called reply-to is refused", func(c *guard.Config) {
			c.Forms = map[string]guard.Form{"c": {To: []string{"a@b.test"}, Fields: guard.FieldNames{Email: "reply-to"}}}
		}, "would let a visitor choose"},
		{"off-site success URL is refused", func(c *guard.Config) {
			c.Forms = map[string]guard.Form{"c": {To: []string{"a@b.test"}, SuccessURL: "https://evil.test/"}}
		}, "SuccessURL"},
		{"short key secret is refused", func(c *guard.Config) { c.KeySecret = []byte("short") }, "KeySecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			g, err := guard.New(c)
			if err == nil {
				g.Close()
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "guard: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
