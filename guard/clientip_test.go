package guard_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard"
)

func TestClientIP(t *testing.T) {
	x, err := guard.NewIPResolver([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.5"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
		err          error
	}{
		{"an untrusted peer is the client whatever XFF says", "198.51.100.7:1", []string{"1.1.1.1"}, "198.51.100.7", nil},
		{"a trusted proxy without XFF is the client", "10.0.0.1:1", nil, "10.0.0.1", nil},
		{"the rightmost untrusted hop wins", "10.0.0.1:1", []string{"1.1.1.1, 2.2.2.2, 10.0.0.9"}, "2.2.2.2", nil},
		{"several XFF lines are one list", "10.0.0.1:1", []string{"1.1.1.1", "3.3.3.3, 10.0.0.2"}, "3.3.3.3", nil},
		{"a spoofed leftmost entry is ignored", "192.0.2.5:1", []string{"127.0.0.1, 203.0.113.50"}, "203.0.113.50", nil},
		{"all-trusted chain answers the leftmost hop", "10.0.0.1:1", []string{"10.0.0.3, 10.0.0.2"}, "10.0.0.3", nil},
		{"hops with ports are read", "10.0.0.1:1", []string{"[2001:db8::1]:443"}, "2001:db8::1", nil},
		{"mapped IPv6 hops are folded", "10.0.0.1:1", []string{"::ffff:203.0.113.1"}, "203.0.113.1", nil},
		{"a malformed hop fails closed", "10.0.0.1:1", []string{"1.1.1.1, unknown"}, "", guard.ErrForwardedFor},
		{"an empty hop fails closed", "10.0.0.1:1", []string{"1.1.1.1,,10.0.0.2"}, "", guard.ErrForwardedFor},
		{"an IPv6 trusted proxy range works", "[2001:db8:ffff::1]:1", []string{"2001:db8:1::5"}, "2001:db8:1::5", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := x.ClientIP(r)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Fatalf("ClientIP = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestBucket(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":             "192.0.2.1/32",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"::ffff:198.51.100.1":   "198.51.100.1/32",
		"2001:db8:1:2:ffff::ff": "2001:db8:1:2::/64",
	} {
		if got := guard.Bucket(netip.MustParseAddr(in)).String(); got != want {
			t.Errorf("Bucket(%s) = %s, want %s", in, got, want)
		}
	}
}

func BenchmarkClientIP(b *testing.B) {
	x, _ := guard.NewIPResolver([]string{"10.0.0.0/8"})
	for _, hops := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("hops=%d", hops), func(b *testing.B) {
			// Attacker-sized: every hop is a trusted-looking address except
			// the first, so the walk goes all the way left.
			parts := make([]string, hops)
			parts[0] = "203.0.113.1"
			for i := 1; i < hops; i++ {
				parts[i] = fmt.Sprintf("10.0.%d.%d", i/250%250, i%250)
			}
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.RemoteAddr = "10.0.0.1:1"
			r.Header.Set("X-Forwarded-For", strings.Join(parts, ", "))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.ClientIP(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
