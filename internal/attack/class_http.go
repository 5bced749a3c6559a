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

// legitBody is a valid urlencoded contact post for r.
func legitBody(r *Request) []byte { return URLEncoded(contactBase(r)...) }

// methodPost is a valid contact post of the method-confusion class.
func (e *Env) methodPost(note string) *Attempt {
	r := e.NewRequest("method-confusion", ContactForm)
	r.Sender = visitor(r)
	r.Note = note
	return &Attempt{Req: r, ContentType: CTForm, Body: legitBody(r), XFF: e.viaProxy(r)}
}

func genMethod(e *Env) []Batch {
	var b Batch
	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE", "HEAD", "TRACE", "CONNECT", "PROPFIND"} {
		a := e.methodPost("method " + m)
		a.Method = m
		if m == "GET" || m == "HEAD" {
			a.Body = nil
			a.Path = "/f/" + ContactForm + "?" + string(legitBody(a.Req))
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
	b = append(b, e.contentTypeConfusion()...)
	b = append(b, e.crossSite()...)
	// Unknown forms and paths.
	for _, p := range []string{"/f/", "/f/unknown", "/f/contact/", "/f/contact/../share", "/f/CONTACT", "/f/contact%00", "/f/contact/challenge"} {
		a := e.methodPost("")
		a.Path = p
		b = append(b, a)
	}
	e.Shuffle(b)
	return []Batch{b}
}

// contentTypeConfusion: bodies that do not match their Content-Type, or
// types the service does not take.
func (e *Env) contentTypeConfusion() Batch {
	var b Batch
	asJSON := func(r *Request) []byte { return JSONObject(contactBase(r)...) }
	for _, c := range []struct {
		ct   string
		body func(r *Request) []byte
	}{
		{"text/plain", legitBody},
		{"text/plain;charset=UTF-8", legitBody},
		{"", legitBody},
		{CTJSON, legitBody},
		{CTForm, asJSON},
		{"application/x-www-form-urlencoded; charset=utf-7", func(r *Request) []byte {
			return []byte("name=+ADw-script+AD4-&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/x-www-form-urlencoded; charset=iso-8859-1", func(r *Request) []byte {
			return []byte("name=M\xe9&email=" + url.QueryEscape(visitor(r)) + "&message=" + r.Marker)
		}},
		{"application/xml", func(r *Request) []byte { return []byte("<form><message>" + r.Marker + "</message></form>") }},
		{"application/json; charset=utf-16", asJSON},
		{"application/vnd.api+json", asJSON},
		{"APPLICATION/X-WWW-FORM-URLENCODED", legitBody},
		{"application/x-www-form-urlencoded, application/json", legitBody},
		{"multipart/mixed; boundary=x", func(r *Request) []byte { return []byte("--x\r\n\r\n" + r.Marker + "\r\n--x--\r\n") }},
		{"text/html", legitBody},
	} {
		a := e.methodPost(fmt.Sprintf("Content-Type %q", c.ct))
		a.ContentType, a.Body = c.ct, c.body(a.Req)
		if c.ct == "" {
			a.Header = http.Header{"Content-Type": {""}}
		}
		b = append(b, a)
	}
	return b
}

// crossSite: posts with wrong, missing and opaque origins, and a CORS
// preflight from another site; none may be granted.
func (e *Env) crossSite() Batch {
	var b Batch
	for _, h := range []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}},
		{"Origin": {"http://127.0.0.1.evil.example"}},
		{"Origin": {""}, "Referer": {"https://evil.example/page"}},
		{"Origin": {""}, "Referer": {""}},
		{"Origin": {""}, "Referer": {e.Cfg.Origin() + ".evil.example/"}},
		{"Origin": {"https://example.test.evil.example"}},
	} {
		a := e.methodPost(fmt.Sprintf("headers %v", h))
		a.Header, a.Check = h, corsCheck
		b = append(b, a)
	}
	r := e.NewRequest("method-confusion", ContactForm)
	r.Note = "CORS preflight from https://evil.example"
	r.Client = e.FreshIPv4()
	a := &Attempt{Req: r, Method: "OPTIONS", XFF: []string{r.Client},
		Header: http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type"}}}
	a.Check = corsCheck
	return append(b, a)
}

// corsCheck fails an answer that grants another site's origin.
func corsCheck(_ int, h http.Header, _ []byte) (string, string) {
	if o := h.Get("Access-Control-Allow-Origin"); o == "*" || strings.Contains(o, "evil.example") || o == "null" {
		return "cors", fmt.Sprintf("Access-Control-Allow-Origin: %q granted to another site", o)
	}
	return "", ""
}
