package attack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"sync"
	"time"
)

// Siteverify is a loopback stand-in for Cloudflare Turnstile's siteverify
// endpoint, speaking its documented protocol
// (developers.cloudflare.com/turnstile/get-started/server-side-validation):
// a form-encoded POST of secret, response, optional remoteip and optional
// idempotency_key (a UUID), answered with JSON {"success", "error-codes",
// "challenge_ts", "hostname", "action", "cdata"} on success and {"success":
// false, "error-codes": [...], "messages": []} on failure. Tokens it issued
// (Issue) succeed once; a second use is "timeout-or-duplicate"; anything
// else is "invalid-input-response". A retry with the same idempotency_key
// and token gets the first answer again, as documented. Requests that
// stray from the protocol are answered as Cloudflare would and counted in
// Stats.ProtocolErrors.
type Siteverify struct {
	URL string

	srv *http.Server
	ln  net.Listener

	mu     sync.Mutex
	secret string
	issued map[string]time.Time // unspent good tokens
	spent  map[string]bool
	idem   map[string]idemAnswer
	stats  SiteverifyStats
}

type idemAnswer struct {
	response string
	body     []byte
}

// SiteverifyStats counts the calls the fake answered.
type SiteverifyStats struct {
	Calls, Good, Duplicate, Junk int
	// ProtocolErrors counts requests that broke the documented protocol
	// (method, content type, missing or unknown fields, bad secret);
	// FirstError describes the first.
	ProtocolErrors int
	FirstError     string
}

// The signup form (ServiceConfig.TurnstileVerifyURL): a contact form with
// Turnstile.
const (
	SignupForm       = "signup"
	SignupTo         = "signup@example.test"
	TurnstileSiteKey = "attack-site-key"
)

// Turnstile's documented limit on the response field, and the hostname
// the fake's good tokens were solved on.
const (
	turnstileMaxResponse = 2048
	turnstileHostname    = SiteDomain
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// StartSiteverify listens on a free loopback port. SetSecret must be
// called before the first verification.
func StartSiteverify() (*Siteverify, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Siteverify{URL: "http://" + ln.Addr().String() + "/turnstile/v0/siteverify", ln: ln,
		issued: map[string]time.Time{}, spent: map[string]bool{}, idem: map[string]idemAnswer{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// SetSecret sets the widget secret the service must send.
func (s *Siteverify) SetSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// Issue returns a fresh good token, as the widget hands one to a visitor
// who solved the challenge now.
func (s *Siteverify) Issue() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := "0.good." + hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued[tok] = time.Now()
	return tok
}

// Stats returns the counts so far.
func (s *Siteverify) Stats() SiteverifyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Close stops the server.
func (s *Siteverify) Close() error { return s.srv.Close() }

func (s *Siteverify) protocolError(format string, a ...any) {
	s.stats.ProtocolErrors++
	if s.stats.FirstError == "" {
		s.stats.FirstError = fmt.Sprintf(format, a...)
	}
}

// ServeHTTP answers one siteverify call.
func (s *Siteverify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.mu.Lock()
		s.protocolError("method %s", r.Method)
		s.mu.Unlock()
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	vals, err := url.ParseQuery(string(raw))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Calls++
	if ct != "application/x-www-form-urlencoded" || err != nil {
		s.protocolError("content type %q, body parse error %v", ct, err)
		writeSiteverify(w, failure("bad-request"))
		return
	}
	if r.URL.RawQuery != "" {
		s.protocolError("query string %q (the secret belongs in the body)", r.URL.RawQuery)
	}
	for k, v := range vals {
		switch k {
		case "secret", "response", "remoteip", "idempotency_key":
			if len(v) != 1 {
				s.protocolError("field %s sent %d times", k, len(v))
			}
		default:
			s.protocolError("undocumented field %q", k)
		}
	}
	body := s.answer(vals)
	writeSiteverify(w, body)
}

// answer decides one call; s.mu is held.
func (s *Siteverify) answer(vals url.Values) []byte {
	secret, resp := vals.Get("secret"), vals.Get("response")
	switch {
	case secret == "":
		s.protocolError("no secret")
		return failure("missing-input-secret")
	case secret != s.secret:
		s.protocolError("wrong secret")
		return failure("invalid-input-secret")
	case resp == "":
		s.protocolError("no response")
		return failure("missing-input-response")
	}
	if ip := vals.Get("remoteip"); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			s.protocolError("remoteip %q is not an IP address", ip)
		}
	}
	key, hasKey := vals.Get("idempotency_key"), vals.Has("idempotency_key")
	if hasKey {
		if !uuidPattern.MatchString(key) {
			s.protocolError("idempotency_key %q is not a UUID", key)
			return failure("bad-request")
		}
		if prev, ok := s.idem[key]; ok && prev.response == resp {
			return prev.body
		}
	}
	var body []byte
	issued, good := s.issued[resp]
	switch {
	case len(resp) > turnstileMaxResponse:
		s.stats.Junk++
		body = failure("invalid-input-response")
	case good:
		s.stats.Good++
		delete(s.issued, resp)
		s.spent[resp] = true
		body, _ = json.Marshal(map[string]any{
			"success": true, "error-codes": []string{},
			"challenge_ts": issued.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			"hostname":     turnstileHostname, "action": "", "cdata": "",
		})
	case s.spent[resp]:
		s.stats.Duplicate++
		body = failure("timeout-or-duplicate")
	default:
		s.stats.Junk++
		body = failure("invalid-input-response")
	}
	if hasKey {
		s.idem[key] = idemAnswer{response: resp, body: body}
	}
	return body
}

func failure(codes ...string) []byte {
	b, _ := json.Marshal(map[string]any{"success": false, "error-codes": codes, "messages": []string{}})
	return b
}

func writeSiteverify(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
