package attack

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

func genRedirect(e *Env) []Batch {
	var b Batch
	for _, next := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example",
		"javascript:alert(1)", "http://127.0.0.1:1@evil.example/", e.Cfg.Origin() + "@evil.example/",
		"https:evil.example", "/%2F%2Fevil.example", "data:text/html,<script>alert(1)</script>", " https://evil.example/",
		"/\t/evil.example", "/thanks"} {
		for _, enc := range []Enc{EncForm, EncMultipart} {
			r := e.NewRequest("redirect", ContactForm)
			r.Sender = visitor(r)
			r.Note = fmt.Sprintf("%s _next=%q", enc, next)
			a := e.Post(r, enc, append(contactBase(r), KV{"_next", next})...)
			a.Header = http.Header{"Accept": {"text/html"}}
			a.Check = e.checkRedirect
			b = append(b, a)
		}
	}
	// Shared URLs off the site.
	for _, u := range []string{"https://evil.example/", "//evil.example/", "javascript:alert(1)", "http://example.test.evil.example/",
		e.Cfg.Origin() + "@evil.example/", "data:text/html,x", "https://example.test@evil.example/"} {
		r := e.NewRequest("redirect", ShareForm)
		r.Sender = visitor(r)
		friend := fmt.Sprintf("friend%d@recipient.test", r.ID)
		r.Allowed = []string{friend}
		r.Note = fmt.Sprintf("url=%q", u)
		a := e.Post(r, e.encs()[0], append(shareBase(r, e, "url"), KV{"to", friend}, KV{"url", u})...)
		a.Check = mustRefuse("offsite_url")
		b = append(b, a)
	}
	e.Shuffle(b)
	return []Batch{b}
}

// checkRedirect fails a redirect to anywhere but the site.
func (e *Env) checkRedirect(status int, h http.Header, _ []byte) (string, string) {
	loc := h.Get("Location")
	if status < 300 || status > 399 || loc == "" {
		return "", ""
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "offsite_redirect", fmt.Sprintf("unparsable Location %q", loc)
	}
	if strings.ContainsAny(loc, "\\\t\r\n ") || (u.Scheme == "" && u.Host == "" && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//")) {
		if strings.ContainsAny(loc, "\\\t\r\n ") {
			return "offsite_redirect", fmt.Sprintf("Location %q has characters browsers read as a host", loc)
		}
		return "", ""
	}
	origin := u.Scheme + "://" + u.Host
	if origin == e.Cfg.Origin() || origin == SiteOrigin2 {
		if u.User != nil {
			return "offsite_redirect", fmt.Sprintf("Location %q carries userinfo", loc)
		}
		return "", ""
	}
	return "offsite_redirect", fmt.Sprintf("%d to %q", status, loc)
}

func genMethod(e *Env) []Batch {
	var b Batch
	legitBody := func(r *Request) []byte { return URLEncoded(contactBase(r)...) }
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", "CONNECT", "PROPFIND"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = "method " + m
		a := &Attempt{Req: r, Method: m, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r)}
		if m == "GET" || m == "HEAD" {
			a.Body = nil
			a.Path = "/f/" + ContactForm + "?" + string(legitBody(r))
		}
		b = append(b, a)
	}
	// Method override headers and parameters.
	for _, h := range []string{"X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		a := &Attempt{Req: r, Method: "GET", Path: "/f/" + ContactForm + "?" + string(legitBody(r)), XFF: e.viaProxy(r),
			Header: http.Header{h: {"POST"}}}
		b = append(b, a)
	}
	// Content-type confusion.
	for _, c := range []struct {
		ct   string
		body func(r *Request) []byte
	}{
		{"text/plain", legitBody},
		{"text/plain;charset=UTF-8", legitBody},
		{"", legitBody},
		{CTJSON, legitBody},
		{CTForm, func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"application/x-www-form-urlencoded; charset=utf-7", func(r *Request) []byte {
			return []byte("name=+ADw-script+AD4-&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/x-www-form-urlencoded; charset=iso-8859-1", func(r *Request) []byte {
			return []byte("name=M\xe9&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/xml", func(r *Request) []byte { return []byte("<form><message>" + r.Marker + "</message></form>") }},
		{"application/json; charset=utf-16", func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"application/vnd.api+json", func(r *Request) []byte { return JSONObject(contactBase(r)...) }},
		{"APPLICATION/X-WWW-FORM-URLENCODED", legitBody},
		{"application/x-www-form-urlencoded, application/json", legitBody},
		{"multipart/mixed; boundary=x", func(r *Request) []byte { return []byte("--x\r\n\r\n" + r.Marker + "\r\n--x--\r\n") }},
		{"text/html", legitBody},
	} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = fmt.Sprintf("Content-Type %q", c.ct)
		a := &Attempt{Req: r, ContentType: c.ct, Body: c.body(r), XFF: e.viaProxy(r)}
		if c.ct == "" {
			a.Header = http.Header{"Content-Type": {""}}
		}
		b = append(b, a)
	}
	// Cross-site posts: wrong, missing and opaque origins.
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}},
		{"Origin": {"http://127.0.0.1.evil.example"}},
		{"Origin": {""}, "Referer": {"https://evil.example/page"}},
		{"Origin": {""}, "Referer": {""}},
		{"Origin": {""}, "Referer": {e.Cfg.Origin() + ".evil.example/"}},
		{"Origin": {"https://example.test.evil.example"}},
	} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		r.Note = fmt.Sprintf("headers %v", h)
		a := &Attempt{Req: r, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r), Header: h}
		a.Check = corsCheck
		b = append(b, a)
	}
	// A CORS preflight from another site must not be granted.
	{
		r := e.NewRequest("method-confusion", ContactForm)
		r.Note = "CORS preflight from https://evil.example"
		r.Client = e.FreshIPv4()
		a := &Attempt{Req: r, Method: "OPTIONS", XFF: []string{r.Client},
			Header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}}
		a.Check = corsCheck
		b = append(b, a)
	}
	// Unknown forms and paths.
	for _, p := range []string{"/f/", "/f/unknown", "/f/contact/", "/f/contact/../share", "/f/CONTACT", "/f/contact%00", "/f/contact/challenge"} {
		r := e.NewRequest("method-confusion", ContactForm)
		r.Sender = visitor(r)
		b = append(b, &Attempt{Req: r, Path: p, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r)})
	}
	e.Shuffle(b)
	return []Batch{b}
}

// corsCheck fails an answer that grants another site's origin.
func corsCheck(_ int, h http.Header, _ []byte) (string, string) {
	if o := h.Get("Access-Control-Allow-Origin"); o == "*" || strings.Contains(o, "evil.example") || o == "null" {
		return "cors", fmt.Sprintf("Access-Control-Allow-Origin: %q granted to another site", o)
	}
	return "", ""
}
