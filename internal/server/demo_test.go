package server

import (
	"net/http"
	"testing"

	"github.com/formguard/formguard/internal/config"
)

// TestDemoOnlyWhenAsked: a config file gets no page at / unless it says
// demo: true; the built-in demo config says so.
func TestDemoOnlyWhenAsked(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want int
	}{
		{"a config file without demo", serviceConfig, http.StatusNotFound},
		{"demo: true", serviceConfig + "demo: true\n", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _, _, _ := startService(t, tc.yaml)
			resp, err := http.Get(base + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET /: %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	cfg, err := config.Load("", config.Options{Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Demo {
		t.Error("the built-in demo config does not serve the demo page")
	}
}
