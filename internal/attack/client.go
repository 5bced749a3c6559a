package attack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/formguard/formguard/guard/captcha"
)

// KV is one form field; order and repeats are kept.
type KV struct{ K, V string }

// AltchaPlaceholder in a body is replaced by a freshly solved
// proof-of-work payload when the attempt is sent.
const AltchaPlaceholder = "__FG_ALTCHA__"

// FormTokenPlaceholder in a body is replaced by Attempt.FormToken's value
// when the attempt is sent (a form token fetched, minted or mangled at
// send time, since tokens age and are single use).
const FormTokenPlaceholder = "__FG_FORMTOKEN__"

// Attempt is one request a class sends, and how to judge its answer.
type Attempt struct {
	Req         *Request
	Method      string // default POST
	Path        string // default /f/{Req.Form}
	ContentType string
	Body        []byte
	Header      http.Header
	// Peer is the loopback address the connection comes from; "" is
	// 127.0.0.1, the trusted proxy.
	Peer string
	// XFF are X-Forwarded-For lines the request carries.
	XFF []string
	// PoW is the form whose challenge is solved into AltchaPlaceholder
	// ("" when the body has none).
	PoW string
	// Token, when set, produces the altcha value itself (forged, stale,
	// replayed tokens).
	Token tokenSource
	// FormToken produces the value that replaces FormTokenPlaceholder.
	FormToken tokenSource
	// Raw replaces the HTTP exchange (slow and truncated clients); it
	// returns the status seen (0: none) and a violation detail ("" none).
	Raw func(ctx context.Context, addr string) (status int, violation string)
	// Check judges the answer beyond the mail audit; it returns a rule
	// and detail for a violation, or "".
	Check func(status int, h http.Header, body []byte) (rule, detail string)
}

// tokenSource produces a token (an altcha value or a form token) at send
// time, as the attempt's client.
type tokenSource = func(ctx context.Context, c *Client, a *Attempt) (string, error)

// fixedToken always produces s.
func fixedToken(s string) tokenSource {
	return func(context.Context, *Client, *Attempt) (string, error) { return s, nil }
}

// Client sends attempts to the service from many loopback addresses.
type Client struct {
	Base   string // http://127.0.0.1:PORT
	Origin string

	mu      sync.Mutex
	clients map[string]*http.Client
}

// NewClient returns a client for the service at addr.
func NewClient(addr string) *Client {
	return &Client{Base: "http://" + addr, Origin: "http://" + addr, clients: map[string]*http.Client{}}
}

// HTTP returns the client whose connections come from peer.
func (c *Client) HTTP(peer string) *http.Client {
	if peer == "" {
		peer = "127.0.0.1"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if hc, ok := c.clients[peer]; ok {
		return hc
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(peer)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 10 * time.Second}
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.clients[peer] = hc
	return hc
}

// CloseIdle closes every idle connection (between service restarts).
func (c *Client) CloseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hc := range c.clients {
		hc.CloseIdleConnections()
	}
}

// Send performs a, filling in a.Req's status and submission ID. It
// returns a harness violation ("" rule when none) and a transport error.
func (c *Client) Send(ctx context.Context, a *Attempt) (rule, detail string, err error) {
	a.Req.Sent = time.Now()
	defer func() { a.Req.Done = time.Now() }()
	if a.Raw != nil {
		st, v := a.Raw(ctx, strings.TrimPrefix(c.Base, "http://"))
		a.Req.Status = st
		if v != "" {
			return "slow_client", v, nil
		}
		return "", "", nil
	}
	body, err := c.fillTokens(ctx, a)
	if err != nil {
		return "", "", err
	}
	req, err := c.newRequest(ctx, a, body)
	if err != nil {
		return "", "", err
	}
	resp, err := c.HTTP(a.Peer).Do(req)
	if err != nil {
		a.Req.Status = 0
		return "", "", nil // a refused connection is a refusal
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a.Req.Status = resp.StatusCode
	if resp.StatusCode == http.StatusSeeOther && !strings.Contains(resp.Header.Get("Location"), "error=") {
		a.Req.SuccessRedirect = true
	}
	if resp.StatusCode/100 == 2 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var ok struct {
			OK bool   `json:"ok"`
			ID string `json:"id"`
		}
		if json.Unmarshal(rb, &ok) == nil && ok.OK {
			a.Req.SubID = ok.ID
		}
	}
	if a.Check != nil {
		rule, detail = a.Check(resp.StatusCode, resp.Header, rb)
	}
	return rule, detail, nil
}

// fillTokens returns a's body with its placeholders replaced: the altcha
// value (a.Token's, or a solved challenge for a.PoW) and the form token.
func (c *Client) fillTokens(ctx context.Context, a *Attempt) ([]byte, error) {
	body := a.Body
	if bytes.Contains(body, []byte(AltchaPlaceholder)) {
		var tok string
		var err error
		switch {
		case a.Token != nil:
			tok, err = a.Token(ctx, c, a)
		case a.PoW != "":
			tok, err = c.SolvePoW(ctx, a.PoW, a.Peer, a.XFF)
		default:
			err = errors.New("attack: body has an altcha placeholder but the attempt no PoW")
		}
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(a.ContentType, "application/x-www-form-urlencoded") {
			tok = url.QueryEscape(tok)
		}
		body = bytes.ReplaceAll(body, []byte(AltchaPlaceholder), []byte(tok))
	}
	if bytes.Contains(body, []byte(FormTokenPlaceholder)) {
		if a.FormToken == nil {
			return nil, errors.New("attack: body has a form-token placeholder but the attempt no FormToken")
		}
		tok, err := a.FormToken(ctx, c, a)
		if err != nil {
			return nil, err
		}
		body = bytes.ReplaceAll(body, []byte(FormTokenPlaceholder), []byte(escapeFor(a.ContentType, tok)))
	}
	return body, nil
}

// newRequest is a's HTTP request with body: method and path default to a
// POST to the form, a.Header replaces the defaults (an empty value
// removes the header), a.XFF adds X-Forwarded-For lines.
func (c *Client) newRequest(ctx context.Context, a *Attempt, body []byte) (*http.Request, error) {
	method := a.Method
	if method == "" {
		method = http.MethodPost
	}
	path := a.Path
	if path == "" {
		path = "/f/" + a.Req.Form
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	req.Header.Set("Origin", c.Origin)
	req.Header.Set("Accept", "application/json")
	if a.ContentType != "" {
		req.Header.Set("Content-Type", a.ContentType)
	}
	for k, vs := range a.Header {
		req.Header.Del(k)
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	for _, x := range a.XFF {
		req.Header.Add("X-Forwarded-For", x)
	}
	return req, nil
}

// Challenge fetches a proof-of-work challenge for form as peer/xff.
func (c *Client) Challenge(ctx context.Context, form, peer string, xff []string) (captcha.Challenge, error) {
	var ch captcha.Challenge
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/f/"+form+"/challenge", nil)
	if err != nil {
		return ch, err
	}
	req.Header.Set("Origin", c.Origin)
	for _, x := range xff {
		req.Header.Add("X-Forwarded-For", x)
	}
	resp, err := c.HTTP(peer).Do(req)
	if err != nil {
		return ch, fmt.Errorf("attack: challenge: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return ch, fmt.Errorf("attack: challenge for %s: HTTP %d: %.200s", form, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &ch); err != nil {
		return ch, fmt.Errorf("attack: challenge: %w", err)
	}
	return ch, nil
}

// escapeFor escapes a value substituted into a body of content type ct.
func escapeFor(ct, v string) string {
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		return url.QueryEscape(v)
	case strings.HasPrefix(ct, CTJSON):
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	}
	return v
}

// FormToken fetches a fresh form token for form as peer/xff from
// GET /f/{form}/token, which answers {"field":"_fg_token","token":"..."}.
func (c *Client) FormToken(ctx context.Context, form, peer string, xff []string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/f/"+form+"/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Origin", c.Origin)
	for _, x := range xff {
		req.Header.Add("X-Forwarded-For", x)
	}
	resp, err := c.HTTP(peer).Do(req)
	if err != nil {
		return "", fmt.Errorf("attack: form token: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("attack: form token for %s: HTTP %d: %.200s", form, resp.StatusCode, b)
	}
	var t struct{ Field, Token string }
	if err := json.Unmarshal(b, &t); err != nil {
		return "", fmt.Errorf("attack: form token: %w", err)
	}
	if t.Field != captcha.FormTokenField || t.Token == "" {
		return "", fmt.Errorf("attack: form token for %s: answer %.200s", form, b)
	}
	return t.Token, nil
}

// SolvePoW fetches and solves a challenge, returning the altcha value.
func (c *Client) SolvePoW(ctx context.Context, form, peer string, xff []string) (string, error) {
	ch, err := c.Challenge(ctx, form, peer, xff)
	if err != nil {
		return "", err
	}
	return Solve(ch)
}

// Solve brute-forces a challenge as a browser would and encodes the
// payload the way ALTCHA's widget does (base64 of the JSON).
func Solve(ch captcha.Challenge) (string, error) {
	if ch.MaxNumber > 10_000_000 {
		return "", fmt.Errorf("attack: challenge maxnumber %d too large to solve here", ch.MaxNumber)
	}
	for n := int64(0); n <= ch.MaxNumber; n++ {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			return EncodePayload(captcha.PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge,
				Number: n, Salt: ch.Salt, Signature: ch.Signature}), nil
		}
	}
	return "", errors.New("attack: challenge has no solution in range")
}

// EncodePayload encodes a payload for the altcha field.
func EncodePayload(p captcha.PoWPayload) string {
	b, _ := json.Marshal(p)
	return base64.StdEncoding.EncodeToString(b)
}

// Bodies.

// URLEncoded encodes kvs in order (repeats kept).
func URLEncoded(kvs ...KV) []byte {
	var b strings.Builder
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv.K))
		b.WriteByte('=')
		if kv.V == AltchaPlaceholder {
			b.WriteString(kv.V)
		} else {
			b.WriteString(url.QueryEscape(kv.V))
		}
	}
	return []byte(b.String())
}

// JSONObject encodes kvs as one flat JSON object in order, keeping
// duplicate keys (which encoding/json would never produce).
func JSONObject(kvs ...KV) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(kv.K)
		v, _ := json.Marshal(kv.V)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Multipart encodes kvs as multipart/form-data and returns the body and
// its content type.
func Multipart(kvs ...KV) ([]byte, string) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	_ = w.SetBoundary("fgattackboundary0123456789")
	for _, kv := range kvs {
		_ = w.WriteField(kv.K, kv.V)
	}
	_ = w.Close()
	return b.Bytes(), w.FormDataContentType()
}

// Content types.
const (
	CTForm = "application/x-www-form-urlencoded"
	CTJSON = "application/json"
)
