package main

import (
	"net/url"
	"strconv"

	"github.com/formguard/formguard/guard/ratelimit"
)

// The site every server is configured for, and what the requests claim.
const (
	siteDomain = "example.test"
	siteOrigin = "https://example.test"
	formPath   = "/f/contact"
	evilOrigin = "https://evil.test"
)

// mix is one request mix: the same request stream is sent to every server.
type mix struct {
	name  string // -mixes name
	title string // table label
	// limits is how the guard servers are configured for it: "clients"
	// keeps the per-client tiers at their defaults (per IP 5/h, per sender
	// 3/h) and lifts the per-form and global tiers, so refusals come from
	// the per-client tiers; "none" lifts every tier (accept mixes).
	limits string
	// deliver is the mail set-up behind the guard: "" answers accepted
	// posts without mail; deliverRSA, deliverEd25519 and deliverSMTP hand
	// them to mailer.Deliver (compose, DKIM-sign, fsynced directory outbox).
	deliver string
	// build returns the request generator for a server at host.
	build func(host string, clients int) reqFunc
}

var mixes = []mix{
	{
		name: "reject", title: "1 cheap rejections", limits: "clients",
		build: func(host string, _ int) reqFunc {
			reqs := [][]byte{
				appendPost(nil, host, siteOrigin, "", contactBody("_gotcha", "x")),                                                                        // honeypot: answered as success
				appendPost(nil, host, evilOrigin, "", contactBody()),                                                                                      // bad origin: 403
				appendPost(nil, host, siteOrigin, "", form("name", "Ada Lovelace", "email", "not-an-address", "subject", "Hello", "message", "Hi there")), // invalid field: 422
			}
			return func(buf []byte, n uint64) []byte { return append(buf, reqs[n%uint64(len(reqs))]...) }
		},
	},
	{
		name: "limited", title: "2 one client, rate-limited", limits: "clients",
		build: func(host string, _ int) reqFunc {
			req := appendPost(nil, host, siteOrigin, "", contactBody())
			return func(buf []byte, _ uint64) []byte { return append(buf, req...) }
		},
	},
	{
		name: "honeypot", title: "2b honeypot flood, distinct clients", limits: "clients",
		build: func(host string, clients int) reqFunc {
			return distinctPosts(host, clients, "&_gotcha=x")
		},
	},
	{
		name: "banned", title: "2c one banned client", limits: "clients",
		build: bannedClient,
	},
	{
		name: "distinct", title: "3 distinct clients", limits: "clients",
		build: distinctClients,
	},
	{
		name: "accept", title: "4 accepted into dir outbox (RSA-2048 DKIM)", limits: "none", deliver: deliverRSA,
		build: validPosts,
	},
	{
		name: "accept-ed25519", title: "4b accepted into dir outbox (Ed25519 DKIM)", limits: "none", deliver: deliverEd25519,
		build: validPosts,
	},
	{
		name: "e2e", title: "5 end to end: accepted, RSA-2048 signed, sent to SMTP sink", limits: "none", deliver: deliverSMTP,
		build: validPosts,
	},
}

func validPosts(host string, _ int) reqFunc {
	req := appendPost(nil, host, siteOrigin, "", contactBody())
	return func(buf []byte, _ uint64) []byte { return append(buf, req...) }
}

func mixByName(name string) (mix, bool) {
	for _, m := range mixes {
		if m.name == name {
			return m, true
		}
	}
	return mix{}, false
}

func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// contactBody is a valid contact post plus extra fields.
func contactBody(extra ...string) string {
	return form(append([]string{"name", "Ada Lovelace", "email", "ada@example.org", "subject", "Hello",
		"message", "Hi there,\r\nI read your article and have a question about it.\r\nRegards, Ada"}, extra...)...)
}

// appendPost appends a complete urlencoded POST of body to the contact form.
func appendPost(buf []byte, host, origin, xff, body string) []byte {
	buf = appendHead(buf, host, origin, xff, len(body))
	return append(buf, body...)
}

func appendHead(buf []byte, host, origin, xff string, n int) []byte {
	buf = append(buf, "POST "+formPath+" HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\nUser-Agent: formguard-load/1\r\nAccept: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\nOrigin: "...)
	buf = append(buf, origin...)
	if xff != "" {
		buf = append(buf, "\r\nX-Forwarded-For: "...)
		buf = append(buf, xff...)
	}
	buf = append(buf, "\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, "\r\n\r\n"...)
}

// distinctClients sends valid posts, the n-th from client n mod clients:
// X-Forwarded-For 198.18.0.0/15 (RFC 2544's benchmarking range, 131,072
// addresses) and its own Reply-To address, through a trusted proxy
// (127.0.0.1, the harness).
func distinctClients(host string, clients int) reqFunc { return distinctPosts(host, clients, "") }

// distinctPosts is distinctClients with suffix appended to every body.
func distinctPosts(host string, clients int, suffix string) reqFunc {
	pre := form("name", "Ada Lovelace", "subject", "Hello",
		"message", "Hi there,\r\nI read your article and have a question about it.\r\nRegards, Ada") + "&email=visitor"
	const post = "%40example.org"
	return func(buf []byte, n uint64) []byte {
		c := uint32(n % uint64(clients))
		var num [10]byte
		id := strconv.AppendUint(num[:0], uint64(c), 10)
		a := 198<<24 | 18<<16 + c // c < 1<<17
		var ip [15]byte
		x := strconv.AppendUint(ip[:0], uint64(a>>24), 10)
		x = append(x, '.')
		x = strconv.AppendUint(x, uint64(a>>16&0xff), 10)
		x = append(x, '.')
		x = strconv.AppendUint(x, uint64(a>>8&0xff), 10)
		x = append(x, '.')
		x = strconv.AppendUint(x, uint64(a&0xff), 10)
		buf = appendHead(buf, host, siteOrigin, string(x), len(pre)+len(id)+len(post)+len(suffix))
		buf = append(buf, pre...)
		buf = append(buf, id...)
		buf = append(buf, post...)
		return append(buf, suffix...)
	}
}

// bannedClient sends honeypot hits from one client until its offences
// earn a ban (the warm-up sends far more than the ban threshold), then
// valid posts, which its ban refuses.
func bannedClient(host string, _ int) reqFunc {
	trap := appendPost(nil, host, siteOrigin, "", contactBody("_gotcha", "x"))
	post := appendPost(nil, host, siteOrigin, "", contactBody())
	return func(buf []byte, n uint64) []byte {
		if n < 4*ratelimit.DefaultBanThreshold {
			return append(buf, trap...)
		}
		return append(buf, post...)
	}
}
