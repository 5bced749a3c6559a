package server

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNS serves TXT records from zone on a loopback UDP port.
func startDNS(t *testing.T, zone map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		v, ok := zone[strings.TrimSuffix(strings.ToLower(q.Name), ".")]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// The start-up doctor logs each finding, and a DNS outage is logged,
// never fatal: the service serves either way.
func TestStartupDoctor(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tests := []struct {
		name string
		dns  func(t *testing.T) string
		want []string
	}{
		{"findings are logged one per line", func(t *testing.T) string {
			return startDNS(t, map[string]string{"formguard.dev": "v=spf1 +all"})
		}, []string{`"msg":"doctor finding","code":"SPF_ALL_PASS","severity":"error"`, `"msg":"doctor finding","code":"DKIM_MISSING"`, `"msg":"doctor done"`}},
		{"a DNS outage is logged and the service keeps serving", func(t *testing.T) string {
			return silent.LocalAddr().String()
		}, []string{`"msg":"doctor: DNS checks could not run"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			y := strings.NewReplacer("DATA", dir, "example.test", "formguard.dev", "site.test", "www.formguard.dev").Replace(serviceConfig)
			cfg := parseConfig(t, y)
			logs := &syncBuffer{}
			svc, err := Open(context.Background(), cfg, Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), DNSServer: tc.dns(t)})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- svc.Run(ctx, ln, nil) }()
			deadline := time.Now().Add(StartupDoctorTimeout + 10*time.Second)
			for !strings.Contains(logs.String(), tc.want[len(tc.want)-1]) {
				if time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			resp, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
			if err != nil {
				t.Errorf("the service does not accept connections: %v", err)
			} else {
				resp.Close()
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("logs lack %s:\n%s", w, logs)
				}
			}
		})
	}
}
