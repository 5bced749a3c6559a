package mailer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateKeyDNSRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		bits int
		k    string
	}{
		{"ed25519", 0, "k=ed25519"},
		{"rsa", 2048, "k=rsa"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			pemBytes, err := GenerateKey(tc.alg, tc.bits)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "dkim.pem")
			if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			name, txt, err := DNSRecord("s1", "Example.TEST.", key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if name != "s1._domainkey.example.test" || !strings.HasPrefix(txt, "v=DKIM1; "+tc.k+"; p=") {
				t.Fatalf("record %s TXT %q", name, txt)
			}
			for _, s := range SplitTXT(txt) {
				if len(s) > 255 {
					t.Fatalf("character-string of %d bytes", len(s))
				}
			}
			// The record verifies mail signed with the generated key.
			relay := newSink(t, "")
			f := newFixture(t, "", smtpTo(t, relay.Addr), key, nil)
			if err := f.m.Deliver(context.Background(), contact("sub-1")); err != nil {
				t.Fatal(err)
			}
			f.m.Flush(context.Background())
			verifyDKIM(t, relay.wait(1)[0].Data, key.Public())
		})
	}
}

func TestParseKey(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "dkim", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkcs1, err := ParseKey(read("rsa2048.pkcs1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := ParseKey(read("rsa2048.pkcs8.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !pkcs1.(*rsa.PrivateKey).Equal(pkcs8) {
		t.Fatal("PKCS#1 and PKCS#8 forms of one key differ")
	}
	if k, err := ParseKey(read("ed25519.pem")); err != nil {
		t.Fatal(err)
	} else if _, ok := k.(ed25519.PrivateKey); !ok {
		t.Fatalf("ed25519.pem parsed as %T", k)
	}
	for _, tc := range []struct {
		name string
		pem  []byte
		want string
	}{
		{"RSA 1024 refused", read("rsa1024.pem"), "1024 bits refused"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"encrypted", []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), "encrypted"},
		{"certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "cannot parse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey(tc.pem)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if bytes.Contains([]byte(err.Error()), []byte("AAAA")) {
				t.Fatal("key material in error")
			}
		})
	}
}

func TestGenerateKeyRefuses(t *testing.T) {
	for _, tc := range []struct {
		alg  string
		bits int
	}{{"rsa", 1024}, {"rsa", 8192}, {"ed25519", 2048}, {"dsa", 0}} {
		if _, err := GenerateKey(tc.alg, tc.bits); err == nil {
			t.Errorf("GenerateKey(%q, %d) accepted", tc.alg, tc.bits)
		}
	}
}

func TestDNSRecordRefuses(t *testing.T) {
	k := loadKey(t, "ed25519.pem")
	for _, tc := range []struct {
		name, sel, dom string
		pub            crypto.PublicKey
	}{
		{"selector with space", "a b", "example.test", k.Public()},
		{"bare TLD", "s1", "test", k.Public()},
		{"RSA 1024", "s1", "example.test", rsa1024(t).Public()},
		{"unknown key type", "s1", "example.test", "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DNSRecord(tc.sel, tc.dom, tc.pub); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
