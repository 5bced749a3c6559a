package mailer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mail "github.com/wneessen/go-mail"
)

// BenchmarkThroughput measures messages per second, DKIM-signed, into a
// loopback SMTP sink, across all cores. pooled/* is Mailer.Compose
// (template, go-mail build, DKIM sign, policy check) then SMTP.Send over the
// connection pool; dial-per-message/* is the same kind of go-mail message
// (built by the same code) signed by go-mail while it is sent with go-mail's
// Client.DialAndSend, one connection per message; rsa2048-sign-ceiling is rsa.SignPKCS1v15 alone,
// the upper bound for any RSA-2048 signing pipeline on this machine. Run:
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
	for _, k := range keys {
		b.Run("pooled/"+k.name, func(b *testing.B) {
			relay := newSink(b, "")
			relay.discard = true
			tr, err := NewSMTP(SMTPConfig{Addr: relay.Addr, HELO: "web.example.test", PoolSize: 8})
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
		b.Run("dial-per-message/"+k.name, func(b *testing.B) {
			relay := newSink(b, "")
			relay.discard = true
			f := newFixture(b, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), k.key, nil)
			var n atomic.Int64
			host, portStr, _ := net.SplitHostPort(relay.Addr)
			port, _ := strconv.Atoi(portStr)
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := mail.NewClient(host, mail.WithPort(port), mail.WithTLSPolicy(mail.NoTLS),
					mail.WithHELO("web.example.test"))
				if err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					// The same composition as pooled/*; go-mail signs it
					// while sending.
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
