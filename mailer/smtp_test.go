package mailer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

var testEnv = Envelope{From: "bounces@example.test", To: []string{"r@x.example"}}

func testRaw(i int) []byte {
	return []byte("From: <no-reply@example.test>\r\nTo: r@x.example\r\nSubject: " + string(rune('a'+i%26)) + "\r\n\r\nbody\r\n")
}

func TestSMTPReusesConnections(t *testing.T) {
	relay := newSink(t, "")
	s := smtpTo(t, relay.Addr)
	defer s.Close()
	for i := range 20 {
		if err := s.Send(context.Background(), testEnv, testRaw(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(relay.wait(20)); got != 20 {
		t.Fatalf("got %d", got)
	}
	if c := relay.conns.Load(); c != 1 {
		t.Fatalf("%d connections for 20 sequential messages, want 1", c)
	}
	m := relay.messages()[0]
	if m.From != testEnv.From || m.To[0] != testEnv.To[0] || !strings.HasSuffix(string(m.Data), "body\r\n") {
		t.Fatalf("received %+v", m)
	}
}

func TestSMTPRedialsAfterRelayRestart(t *testing.T) {
	relay := newSink(t, "")
	addr := relay.Addr
	s := smtpTo(t, addr)
	defer s.Close()
	if err := s.Send(context.Background(), testEnv, testRaw(0)); err != nil {
		t.Fatal(err)
	}
	// The relay restarts: the pooled connection is dead.
	relay.Close()
	relay = newSink(t, addr)
	if err := s.Send(context.Background(), testEnv, testRaw(1)); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	relay.wait(1)
}

func TestSMTPRelayDownIsTemporary(t *testing.T) {
	relay := newSink(t, "")
	relay.Close()
	s := smtpTo(t, relay.Addr)
	err := s.Send(context.Background(), testEnv, testRaw(0))
	if !IsTemporary(err) || IsPermanent(err) || SMTPCode(err) != 0 {
		t.Fatalf("err = %v (temporary %v)", err, IsTemporary(err))
	}
}

func TestSMTPReplyCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stage string
		temp  bool
		code  int
	}{
		{"451 at DATA is temporary", "data", true, 451},
		{"550 at RCPT is permanent", "rcpt", false, 550},
		{"550 at MAIL is permanent", "mail", false, 550},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := newSink(t, "")
			relay.reject = func(stage string, n int) error {
				if stage != tc.stage {
					return nil
				}
				if tc.temp {
					return &smtpError451
				}
				return &smtpError550
			}
			s := smtpTo(t, relay.Addr)
			defer s.Close()
			err := s.Send(context.Background(), testEnv, testRaw(0))
			if IsTemporary(err) != tc.temp || SMTPCode(err) != tc.code {
				t.Fatalf("err = %v temporary=%v code=%d", err, IsTemporary(err), SMTPCode(err))
			}
			// The connection survived the refusal and is reused.
			relay.mu.Lock()
			relay.reject = nil
			relay.mu.Unlock()
			if err := s.Send(context.Background(), testEnv, testRaw(1)); err != nil {
				t.Fatal(err)
			}
			if c := relay.conns.Load(); c != 1 {
				t.Fatalf("connections = %d", c)
			}
		})
	}
}

func TestSMTPAuth(t *testing.T) {
	for _, mech := range []string{"plain", "login"} {
		t.Run(mech, func(t *testing.T) {
			relay := newSink(t, "")
			relay.user, relay.pass = "web", "s3cret"
			s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, Username: "web", Password: "s3cret", Auth: mech})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Send(context.Background(), testEnv, testRaw(0)); err != nil {
				t.Fatal(err)
			}
			relay.wait(1)

			bad, _ := NewSMTP(SMTPConfig{Addr: relay.Addr, Username: "web", Password: "wrong", Auth: mech})
			err = bad.Send(context.Background(), testEnv, testRaw(0))
			if err == nil || strings.Contains(err.Error(), "wrong") {
				t.Fatalf("bad password: err = %v", err)
			}
			// A misconfigured password must hold mail, not dead-letter it.
			if !IsTemporary(err) {
				t.Fatalf("AUTH failure is not temporary: %v", err)
			}
		})
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a client
// config trusting it.
func selfSigned(t testing.TB) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func TestSMTPTLS(t *testing.T) {
	srvTLS, cliTLS := selfSigned(t)
	t.Run("STARTTLS", func(t *testing.T) {
		relay := newSink(t, "")
		relay.srv.TLSConfig = srvTLS
		s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, TLS: TLSStartTLS, TLSConfig: cliTLS,
			Username: "web", Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		relay.user, relay.pass = "web", "pw"
		defer s.Close()
		if err := s.Send(context.Background(), testEnv, testRaw(0)); err != nil {
			t.Fatal(err)
		}
		relay.wait(1)
	})
	t.Run("STARTTLS required but not offered", func(t *testing.T) {
		relay := newSink(t, "")
		s, _ := NewSMTP(SMTPConfig{Addr: relay.Addr, TLS: TLSStartTLS, TLSConfig: cliTLS})
		err := s.Send(context.Background(), testEnv, testRaw(0))
		if err == nil || !IsTemporary(err) {
			t.Fatalf("err = %v; want a temporary refusal to send in clear", err)
		}
		if len(relay.messages()) != 0 {
			t.Fatal("sent without TLS")
		}
	})
	t.Run("implicit TLS", func(t *testing.T) {
		relay := newSink(t, "")
		relay.ln.Close()
		ln, err := tls.Listen("tcp", "127.0.0.1:0", srvTLS)
		if err != nil {
			t.Fatal(err)
		}
		relay.ln = ln
		go relay.srv.Serve(ln)
		s, err := NewSMTP(SMTPConfig{Addr: ln.Addr().String(), TLS: TLSImplicit, TLSConfig: cliTLS})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Send(context.Background(), testEnv, testRaw(0)); err != nil {
			t.Fatal(err)
		}
		relay.wait(1)
	})
}

func TestNewSMTPValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  SMTPConfig
		want string
	}{
		{"no port", SMTPConfig{Addr: "relay.example"}, "host:port"},
		{"plaintext to a remote relay", SMTPConfig{Addr: "relay.example:25", TLS: TLSNone}, "only allowed for a loopback"},
		{"unknown TLS mode", SMTPConfig{Addr: "relay.example:25", TLS: "maybe"}, "SMTPConfig.TLS"},
		{"unknown auth", SMTPConfig{Addr: "relay.example:587", Username: "u", Password: "p", Auth: "cram"}, "SMTPConfig.Auth"},
		{"negative pool", SMTPConfig{Addr: "relay.example:587", PoolSize: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSMTP(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("remote relay defaults to mandatory STARTTLS", func(t *testing.T) {
		s, err := NewSMTP(SMTPConfig{Addr: "relay.example:587"})
		if err != nil {
			t.Fatal(err)
		}
		if p := s.client.TLSPolicy(); !strings.Contains(strings.ToLower(p), "mandatory") {
			t.Fatalf("TLS policy = %q", p)
		}
	})
}

func TestFileTransport(t *testing.T) {
	dir := t.TempDir()
	ft, err := NewFile(FileConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	key := loadKey(t, "rsa2048.pkcs8.pem")
	f := newFixture(t, "", ft, key, nil)
	if err := f.m.Deliver(context.Background(), contact("sub-1")); err != nil {
		t.Fatal(err)
	}
	f.m.Flush(context.Background())
	files, _ := filepathGlob(dir, "*.eml")
	if len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
	raw := readFile(t, files[0])
	verifyDKIM(t, raw, key.Public())
	if tmp, _ := filepathGlob(dir, ".tmp-*"); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestSMTPPoolLimits(t *testing.T) {
	t.Run("idle connections older than IdleTimeout are replaced", func(t *testing.T) {
		relay := newSink(t, "")
		c := &clock{t: t0}
		s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, IdleTimeout: time.Minute, Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		send := func() {
			t.Helper()
			if err := s.Send(context.Background(), testEnv, testRaw(0)); err != nil {
				t.Fatal(err)
			}
		}
		send()
		c.Add(59 * time.Second)
		send()
		if n := relay.conns.Load(); n != 1 {
			t.Fatalf("connections = %d before the idle timeout, want 1", n)
		}
		c.Add(61 * time.Second)
		send()
		if n := relay.conns.Load(); n != 2 {
			t.Fatalf("connections = %d after the idle timeout, want 2", n)
		}
	})
	t.Run("MaxPerConn rotates connections", func(t *testing.T) {
		relay := newSink(t, "")
		s, err := NewSMTP(SMTPConfig{Addr: relay.Addr, MaxPerConn: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 5 {
			if err := s.Send(context.Background(), testEnv, testRaw(i)); err != nil {
				t.Fatal(err)
			}
		}
		if n := relay.conns.Load(); n != 3 {
			t.Fatalf("connections = %d for 5 messages at 2 per connection, want 3", n)
		}
	})
	t.Run("closed transport refuses", func(t *testing.T) {
		relay := newSink(t, "")
		s := smtpTo(t, relay.Addr)
		s.Close()
		if err := s.Send(context.Background(), testEnv, testRaw(0)); err == nil {
			t.Fatal("send after Close succeeded")
		}
	})
}

// A refused RCPT among several fails the whole message before any
// content is sent, and the connection stays in sync for the next one
// (pipelined or not).
func TestSMTPMultiRecipientRefusal(t *testing.T) {
	relay := newSink(t, "")
	relay.reject = func(stage string, n int) error {
		if stage == "rcpt" && n == 2 {
			return &smtpError550
		}
		return nil
	}
	s := smtpTo(t, relay.Addr)
	defer s.Close()
	env := Envelope{From: testEnv.From, To: []string{"a@x.example", "b@x.example", "c@x.example"}}
	err := s.Send(context.Background(), env, testRaw(0))
	if IsTemporary(err) || SMTPCode(err) != 550 {
		t.Fatalf("err = %v", err)
	}
	var d *DeliveryError
	if !errors.As(err, &d) || d.Op != "rcpt" {
		t.Fatalf("err = %#v, want op rcpt", err)
	}
	relay.mu.Lock()
	relay.reject = nil
	n := len(relay.msgs)
	relay.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d messages delivered after a refused RCPT", n)
	}
	if err := s.Send(context.Background(), env, testRaw(1)); err != nil {
		t.Fatal(err)
	}
	relay.mu.Lock()
	n = len(relay.msgs)
	relay.mu.Unlock()
	if n != 1 || relay.conns.Load() != 1 {
		t.Fatalf("messages = %d, connections = %d", n, relay.conns.Load())
	}
}
