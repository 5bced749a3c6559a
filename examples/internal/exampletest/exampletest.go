// Package exampletest holds what the examples' tests share: reading the
// DKIM record an example logs, verifying a signature with an independent
// verifier (emersion/go-msgauth) against that record, comparing two HTTP
// answers, and a log buffer safe for concurrent writers.
package exampletest

import (
	"bytes"
	"encoding/json"
	"net"
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
