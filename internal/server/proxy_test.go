package server

import (
	"net/http"
	"strconv"
	"testing"
)

// trusted_proxies decides whose X-Forwarded-For is believed: behind a
// trusted proxy each client has its own per-IP budget; otherwise the
// header is ignored and a client cannot pick its own rate-limit key.
func TestTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		proxies string
		// the 4th post, from a 4th X-Forwarded-For client, after three
		// posts from three other claimed clients (per_ip is 3/h)
		want int
	}{
		{"behind a trusted proxy every client has its own budget", `trusted_proxies: ["192.0.2.0/24"]`, http.StatusOK},
		{"without trusted proxies X-Forwarded-For is ignored", ``, http.StatusTooManyRequests},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig+tc.proxies+"\n")
			var last *http.Response
			for i := range 4 {
				last = ts.do(t, req{path: "/f/hello", header: map[string]string{"Accept": "application/json", "X-Forwarded-For": "198.51.100." + strconv.Itoa(i+1)},
					body: form("name", "Ada", "email", "ada"+strconv.Itoa(i)+"@example.org", "message", "Hi")})
			}
			if last.StatusCode != tc.want {
				t.Errorf("4th post: %d %s, want %d", last.StatusCode, body(t, last), tc.want)
			}
		})
	}
}
