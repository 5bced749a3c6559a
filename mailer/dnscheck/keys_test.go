package dnscheck_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/formguard/formguard/mailer/dnscheck"
)

func TestParsePublicKeyPEM(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8RSA, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	edKey := testEd25519()
	pkcs8Ed, err := x509.MarshalPKCS8PrivateKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(zoneDir, "keys", "rsa2048.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	tests := []struct {
		name string
		pem  []byte
		want interface{ Equal(x crypto.PublicKey) bool }
	}{
		{"a PKCS#8 RSA private key gives its public half", enc("PRIVATE KEY", pkcs8RSA), &rsaKey.PublicKey},
		{"a PKCS#1 RSA private key gives its public half", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), &rsaKey.PublicKey},
		{"a PKCS#8 Ed25519 private key gives its public half", enc("PRIVATE KEY", pkcs8Ed), edKey.Public().(ed25519.PublicKey)},
		{"a PKIX public key is returned as is", pubPEM, loadKey(t, "rsa2048").(*rsa.PublicKey)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dnscheck.ParsePublicKeyPEM(tt.pem)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want.Equal(got) {
				t.Fatalf("got %T, not the expected public key", got)
			}
		})
	}
	for name, tc := range map[string]struct {
		pem  []byte
		want string
	}{
		"text that is not PEM is refused":  {[]byte("hello"), "dnscheck: DKIM key is not PEM"},
		"a certificate is refused":         {enc("CERTIFICATE", []byte{1}), `unsupported PEM type "CERTIFICATE"`},
		"a corrupt private key is refused": {enc("PRIVATE KEY", []byte{1, 2, 3}), "dnscheck: parsing DKIM key"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dnscheck.ParsePublicKeyPEM(tc.pem)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadPublicKey(t *testing.T) {
	k, err := dnscheck.LoadPublicKey(filepath.Join(zoneDir, "keys", "rsa1024.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if bits := k.(*rsa.PublicKey).N.BitLen(); bits != 1024 {
		t.Errorf("loaded a %d-bit key, want 1024", bits)
	}
	if _, err := dnscheck.LoadPublicKey(filepath.Join(t.TempDir(), "missing.pem")); err == nil || !strings.HasPrefix(err.Error(), "dnscheck: reading DKIM key") {
		t.Errorf("missing file: err = %v", err)
	}
}
