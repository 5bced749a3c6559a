package guard_test

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard"
)

// TestCorpus replays testdata/requests: good submissions and attacks, each
// a file of "key: value" lines (form, content-type, expect), a blank line
// and the raw body. expect is "accepted" or the refusal's code.
func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("../testdata/requests/*.txt")
	if err != nil || len(files) < 30 {
		t.Fatalf("corpus missing: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			head, body, ok := bytes.Cut(raw, []byte("\n\n"))
			if !ok {
				t.Fatal("no blank line after the header")
			}
			meta := map[string]string{}
			for _, l := range strings.Split(string(head), "\n") {
				k, v, _ := strings.Cut(l, ": ")
				meta[k] = v
			}
			g, _ := newGuard(t)
			r := httptest.NewRequest("POST", "/f/"+meta["form"], bytes.NewReader(body))
			r.Header.Set("Content-Type", meta["content-type"])
			r.Header.Set("Origin", "https://example.test")
			r.RemoteAddr = "192.0.2.1:1"
			s, err := g.Check(httptest.NewRecorder(), r)
			switch {
			case meta["expect"] == "accepted" && err != nil:
				t.Fatalf("refused: %v", err)
			case meta["expect"] == "accepted" && len(s.Recipients) == 0:
				t.Fatal("accepted without recipients")
			case meta["expect"] != "accepted" && err == nil:
				t.Fatalf("accepted %+v, want %s", s, meta["expect"])
			case err != nil && guard.AsError(err).Code != meta["expect"]:
				t.Fatalf("code %s, want %s (%v)", guard.AsError(err).Code, meta["expect"], err)
			}
		})
	}
}
