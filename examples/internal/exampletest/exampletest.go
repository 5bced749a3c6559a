// Package exampletest holds what the examples' tests share: reading the
// DKIM record an example logs, verifying a signature with an independent
// verifier (emersion/go-msgauth) against that record, comparing two HTTP
// answers, and a log buffer safe for concurrent writers.
package exampletest

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// LoggedRecord finds the DKIM TXT record in the example's JSON log, as an
// operator would read it.
func LoggedRecord(t testing.TB, logs string) (name, txt string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			DNSName string `json:"dns_name"`
			DNSTXT  string `json:"dns_txt"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "DKIM key") {
			return rec.DNSName, rec.DNSTXT
		}
	}
	t.Fatalf("no DKIM record logged:\n%s", logs)
	return "", ""
}

// VerifyDKIM checks raw's one signature with emersion/go-msgauth, serving
// the record name → txt as DNS would.
func VerifyDKIM(t testing.TB, raw []byte, domain, name, txt string) {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(q string) ([]string, error) {
			if q != name {
				return nil, &net.DNSError{Err: "no such host", Name: q, IsNotFound: true}
			}
			return []string{txt}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != domain {
		for _, v := range vs {
			t.Errorf("signature d=%s: %v", v.Domain, v.Err)
		}
		t.Fatalf("want one valid signature by %s, got %d:\n%s", domain, len(vs), raw)
	}
}

// SyncBuffer is a bytes.Buffer safe for the mailer's goroutines to log to.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Answer is what a client sees of a response: status, every header and the
// body, with a JSON answer's submission id replaced by "ID" once its shape
// is checked, and Date by a placeholder.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// idRE is the submission id in a JSON success answer: 24 characters of the
// guard's lower-case base32 alphabet.
var idRE = regexp.MustCompile(`"id":"[a-z2-7]{24}"`)

// ReadAnswer reads and closes resp.
func ReadAnswer(t testing.TB, resp *http.Response) Answer {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header.Clone()
	if len(h["Date"]) == 1 {
		h["Date"] = []string{"(a date)"}
	}
	body := string(b)
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		if n := len(idRE.FindAllString(body, -1)); n != 1 {
			t.Fatalf("a JSON success answer carries %d ids of the expected shape, want 1: %s", n, body)
		}
		body = idRE.ReplaceAllString(body, `"id":"ID"`)
	}
	return Answer{resp.StatusCode, h, body}
}

// SameAnswer fails unless b is a, header for header and byte for byte.
func SameAnswer(t testing.TB, a, b Answer) {
	t.Helper()
	if a.Status != b.Status {
		t.Errorf("status: %d, then %d", a.Status, b.Status)
	}
	for k, v := range a.Header {
		if got := b.Header[k]; strings.Join(got, "\x00") != strings.Join(v, "\x00") {
			t.Errorf("header %s: %q, then %q", k, v, got)
		}
	}
	for k, v := range b.Header {
		if _, ok := a.Header[k]; !ok {
			t.Errorf("header %s: only in the second answer (%q)", k, v)
		}
	}
	if a.Body != b.Body {
		t.Errorf("body:\n%q\nthen\n%q", a.Body, b.Body)
	}
}
