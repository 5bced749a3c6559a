package mailer

import (
	"bytes"
	"flag"
	"github.com/formguard/formguard/post"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// seeded is a deterministic Rand for golden output.
type seeded struct{ r *rand.ChaCha8 }

func (s seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

// With the clock and randomness injected, and Ed25519 signatures being
// deterministic (RFC 8032), a composed message is byte-for-byte stable:
// header order, encodings, folding and the signature itself.
func TestGoldenMessages(t *testing.T) {
	key := loadKey(t, "ed25519.pem")
	for _, tc := range []struct {
		name  string
		canon Canonicalization
		sub   *post.Submission
	}{
		{"contact-relaxed", Relaxed, contact("sub-1")},
		{"contact-simple", Simple, contact("sub-1")},
		{"share-relaxed", Relaxed, &post.Submission{
			ID: "sub-2", Form: "share", Kind: post.Share, Name: "Zoë",
			Message: "Thought you'd like this <3", URL: "https://example.test/a?b=c&d=e",
			Recipients: []string{"friend@x.example"}, Received: t0,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "", TransportFunc(nil), key, func(c *Config) {
				c.DKIM.Canonicalization = tc.canon
				c.Rand = seeded{rand.NewChaCha8([32]byte{1, 2, 3})}
			})
			msgs, err := f.m.Compose(tc.sub)
			if err != nil {
				t.Fatal(err)
			}
			got := msgs[0].Raw
			verifyDKIM(t, got, key.Public())
			path := filepath.Join("testdata", "golden", tc.name+".eml")
			if *update {
				os.MkdirAll(filepath.Dir(path), 0o755)
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s (run with -update after checking the change):\n%s", path, got)
			}
		})
	}
}
