package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/mailer"
)

// answer is one HTTP answer, read whole.
type answer struct {
	Status int
	Header http.Header
	Body   string
}

// problem is the problem+json body of a rejection.
type problem struct {
	Code   string `json:"code"`
	Status int    `json:"status"`
}

func (a answer) code() string {
	var p problem
	_ = json.Unmarshal([]byte(a.Body), &p)
	return p.Code
}

// post sends a form post the way a browser on origin would, asking for
// JSON unless accept says otherwise.
func post(t *testing.T, base, form string, vals url.Values, origin string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/f/"+form, strings.NewReader(vals.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func get(t *testing.T, url string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// solve fetches a proof-of-work challenge for form and solves it in Go,
// as the browser widget would, returning the altcha field's value.
func solve(t *testing.T, base, form string) string {
	t.Helper()
	a := get(t, base+"/f/"+form+"/challenge")
	if a.Status != 200 {
		t.Fatalf("challenge: %d %s", a.Status, a.Body)
	}
	var ch captcha.Challenge
	if err := json.Unmarshal([]byte(a.Body), &ch); err != nil {
		t.Fatal(err)
	}
	for n := int64(0); n <= ch.MaxNumber; n++ {
		sum := sha256.Sum256([]byte(ch.Salt + strconv.FormatInt(n, 10)))
		if hex.EncodeToString(sum[:]) == ch.Challenge {
			b, _ := json.Marshal(captcha.PoWPayload{Algorithm: ch.Algorithm, Challenge: ch.Challenge, Number: n, Salt: ch.Salt, Signature: ch.Signature})
			return base64.StdEncoding.EncodeToString(b)
		}
	}
	t.Fatal("challenge has no solution")
	return ""
}

// verifyDKIM checks raw's DKIM signature against the public half of the
// key in keyFile, published (for the verifier) at selector._domainkey.domain.
func verifyDKIM(t *testing.T, raw []byte, keyFile, selector, domain string) {
	t.Helper()
	signer, err := mailer.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	name, txt, err := mailer.DNSRecord(selector, domain, signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(q string) ([]string, error) {
			if strings.TrimSuffix(q, ".") == name {
				return []string{txt}, nil
			}
			return nil, os.ErrNotExist
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != domain {
		t.Fatalf("DKIM verifications %+v (err %v)", vs, func() error {
			if len(vs) > 0 {
				return vs[0].Err
			}
			return nil
		}())
	}
}

// waitFiles waits until dir holds n files matching pattern.
func waitFiles(t *testing.T, dir, pattern string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d %s in %s, have %d", n, pattern, dir, len(m))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// header returns the value of the first header field name in raw.
func header(raw []byte, name string) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
