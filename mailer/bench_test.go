package mailer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"
)

// BenchmarkThroughput measures DKIM-signed messages per second into a
// loopback SMTP sink (emersion/go-smtp, in process, so its CPU counts
// too), across all cores:
//
//   - pooled/<link>/<key>: Mailer.Compose (template, go-mail build, DKIM
//     sign, policy check), then SMTP.Send over the connection pool;
//   - dial-per-message/<link>/<key>: the same composed go-mail message,
//     signed by go-mail while go-mail's Client.DialAndSend sends it on a
//     new connection (EHLO, STARTTLS when the link is starttls, QUIT);
//   - rsa2048-sign-ceiling: rsa.SignPKCS1v15 alone, the upper bound for any
//     RSA-2048 signing pipeline on this machine.
//
// <link> is plain or starttls (a P-256 certificate, TLS 1.3). Run:
//
//	go test ./mailer -run '^$' -bench Throughput -benchtime 3s
func BenchmarkThroughput(b *testing.B) {
	keys := []struct {
		name string
		key  crypto.Signer
	}{
		{"ed25519", loadKey(b, "ed25519.pem")},
		{"rsa2048", loadKey(b, "rsa2048.pkcs8.pem")},
	}
	srvTLS, cliTLS := selfSigned(b)
	links := []struct {
		name     string
		srv, cli *tls.Config
	}{{"plain", nil, nil}, {"starttls", srvTLS, cliTLS}}
	for _, link := range links {
		for _, k := range keys {
			b.Run("pooled/"+link.name+"/"+k.name, func(b *testing.B) {
				relay := benchSink(b, link.srv)
				cfg := SMTPConfig{Addr: relay.Addr, HELO: "web.example.test", PoolSize: 8}
				if link.cli != nil {
					cfg.TLS, cfg.TLSConfig = TLSStartTLS, link.cli
				}
				tr, err := NewSMTP(cfg)
				if err != nil {
					b.Fatal(err)
				}
				f := newFixture(b, "", tr, k.key, nil)
				var n atomic.Int64
				b.ReportAllocs()
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						msgs, err := f.m.Compose(contact("sub-" + strconv.FormatInt(n.Add(1), 10)))
						if err != nil {
							b.Error(err)
							return
						}
						if err := tr.Send(context.Background(), Envelope{From: msgs[0].From, To: msgs[0].To}, msgs[0].Raw); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
			b.Run("dial-per-message/"+link.name+"/"+k.name, func(b *testing.B) {
				relay := benchSink(b, link.srv)
				f := newFixture(b, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), k.key, nil)
				var n atomic.Int64
				host, portStr, _ := net.SplitHostPort(relay.Addr)
				port, _ := strconv.Atoi(portStr)
				opts := []mail.Option{mail.WithPort(port), mail.WithHELO("web.example.test"), mail.WithTLSPolicy(mail.NoTLS)}
				if link.cli != nil {
					opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(link.cli))
				}
				b.ReportAllocs()
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					// One Client per goroutine: DialAndSend keeps its
					// connection in the Client.
					c, err := mail.NewClient(host, opts...)
					if err != nil {
						b.Error(err)
						return
					}
					for pb.Next() {
						built, err := f.m.build(contact("sub-" + strconv.FormatInt(n.Add(1), 10)))
						if err != nil {
							b.Error(err)
							return
						}
						m := built[0].msg
						m.SetDKIM(f.m.dkim.signer(testDomain, time.Now))
						if err := c.DialAndSend(m); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
	b.Run("rsa2048-sign-ceiling", func(b *testing.B) {
		key := loadKey(b, "rsa2048.pkcs8.pem").(*rsa.PrivateKey)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var i int
			for pb.Next() {
				i++
				d := sha256.Sum256([]byte(fmt.Sprint(i)))
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// benchSink is a sink that counts instead of keeping messages, offering
// STARTTLS when srvTLS is set.
func benchSink(b *testing.B, srvTLS *tls.Config) *sink {
	relay := newSink(b, "")
	relay.discard = true
	relay.srv.TLSConfig = srvTLS
	return relay
}

// BenchmarkCompose is the per-message CPU cost without the network.
func BenchmarkCompose(b *testing.B) {
	for _, name := range []string{"ed25519.pem", "rsa2048.pkcs8.pem"} {
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(b, name), nil)
			s := contact("sub-1")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.m.Compose(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkThroughputInterleaved runs the Throughput contenders in
// alternating short slices (all cores, 8 goroutines each), so
// that load from other processes on a shared machine hits them alike, and
// reports each one's rate and the two ratios the design targets:
// pooled Ed25519 / dial-per-message Ed25519 (target >= 3; also over
// STARTTLS, where a new connection costs a TLS handshake) and pooled
// RSA-2048 / RSA-2048 signing ceiling (target >= 0.8).
//
//	go test ./mailer -run '^$' -bench ThroughputInterleaved
func BenchmarkThroughputInterleaved(b *testing.B) {
	const (
		rounds     = 6
		slice      = 250 * time.Millisecond
		goroutines = 8
	)
	ed, rsaKey := loadKey(b, "ed25519.pem"), loadKey(b, "rsa2048.pkcs8.pem")
	var seq atomic.Int64
	sub := func() string { return "sub-" + strconv.FormatInt(seq.Add(1), 10) }

	srvTLS, cliTLS := selfSigned(b)
	pooled := func(key crypto.Signer, starttls bool) func() error {
		cfg := SMTPConfig{HELO: "web.example.test", PoolSize: goroutines}
		relay := benchSink(b, nil)
		if starttls {
			relay.srv.TLSConfig = srvTLS
			cfg.TLS, cfg.TLSConfig = TLSStartTLS, cliTLS
		}
		cfg.Addr = relay.Addr
		tr, err := NewSMTP(cfg)
		if err != nil {
			b.Fatal(err)
		}
		f := newFixture(b, "", tr, key, nil)
		return func() error {
			msgs, err := f.m.Compose(contact(sub()))
			if err != nil {
				return err
			}
			return tr.Send(context.Background(), Envelope{From: msgs[0].From, To: msgs[0].To}, msgs[0].Raw)
		}
	}
	dial := func(key crypto.Signer, starttls bool) func() error {
		relay := benchSink(b, nil)
		f := newFixture(b, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), key, nil)
		host, portStr, _ := net.SplitHostPort(relay.Addr)
		port, _ := strconv.Atoi(portStr)
		opts := []mail.Option{mail.WithPort(port), mail.WithHELO("web.example.test"), mail.WithTLSPolicy(mail.NoTLS)}
		if starttls {
			relay.srv.TLSConfig = srvTLS
			opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithTLSConfig(cliTLS))
		}
		return func() error {
			c, err := mail.NewClient(host, opts...)
			if err != nil {
				return err
			}
			built, err := f.m.build(contact(sub()))
			if err != nil {
				return err
			}
			built[0].msg.SetDKIM(f.m.dkim.signer(testDomain, time.Now))
			return c.DialAndSend(built[0].msg)
		}
	}
	rk := rsaKey.(*rsa.PrivateKey)
	ceiling := func() error {
		d := sha256.Sum256([]byte(sub()))
		_, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
		return err
	}
	contenders := []struct {
		name string
		op   func() error
		n    int64
		dur  time.Duration
	}{
		{name: "pooled-ed25519", op: pooled(ed, false)},
		{name: "dial-ed25519", op: dial(ed, false)},
		{name: "pooled-starttls-ed25519", op: pooled(ed, true)},
		{name: "dial-starttls-ed25519", op: dial(ed, true)},
		{name: "pooled-rsa2048", op: pooled(rsaKey, false)},
		{name: "rsa2048-ceiling", op: ceiling},
	}
	runSlice := func(op func() error) (int64, time.Duration) {
		var n atomic.Int64
		start := time.Now()
		deadline := start.Add(slice)
		done := make(chan struct{}, goroutines)
		for range goroutines {
			go func() {
				defer func() { done <- struct{}{} }()
				for time.Now().Before(deadline) {
					if err := op(); err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			}()
		}
		for range goroutines {
			<-done
		}
		return n.Load(), time.Since(start)
	}
	b.ResetTimer()
	for b.Loop() {
		for r := range rounds {
			for i := range contenders {
				c := &contenders[(i+r)%len(contenders)] // rotate the order too
				n, d := runSlice(c.op)
				c.n += n
				c.dur += d
			}
		}
	}
	rate := map[string]float64{}
	for _, c := range contenders {
		rate[c.name] = float64(c.n) / c.dur.Seconds()
		b.ReportMetric(rate[c.name], c.name+"-msgs/s")
	}
	b.ReportMetric(rate["pooled-ed25519"]/rate["dial-ed25519"], "ed25519-pooled/dial")
	b.ReportMetric(rate["pooled-starttls-ed25519"]/rate["dial-starttls-ed25519"], "ed25519-starttls-pooled/dial")
	b.ReportMetric(rate["pooled-rsa2048"]/rate["rsa2048-ceiling"], "rsa2048-pooled/ceiling")
}

// BenchmarkDeliver is the request path of an accepted post: Deliver
// (template, go-mail build and render, policy check, seal) and the durable
// enqueue into a directory spool, from 1 and 64 goroutines (a closed loop
// of 64 HTTP connections). Signing is not on this path: the worker signs.
// It reports messages/s and spool fsyncs per message (group commit).
//
//	go test ./mailer -run '^$' -bench Deliver -benchtime 3s
func BenchmarkDeliver(b *testing.B) {
	for _, k := range []string{"rsa2048.pkcs8.pem", "ed25519.pem"} {
		for _, g := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/goroutines-%d", k, g), func(b *testing.B) {
				f := newFixture(b, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(b, k), nil)
				var n atomic.Int64
				deliver := func() error {
					return f.m.Deliver(context.Background(), contact("sub-"+strconv.FormatInt(n.Add(1), 10)))
				}
				b.ReportAllocs()
				if g == 1 {
					for b.Loop() {
						if err := deliver(); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					b.SetParallelism(max(1, g/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := deliver(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				b.ReportMetric(float64(f.q.Fsyncs())/float64(b.N), "fsyncs/msg")
			})
		}
	}
}
