package dnscheck

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// LoadPublicKey reads a PEM key file, as mail.dkim.key_file names it, and
// returns its public half for Config.PublicKey. It takes a PKCS#8 or PKCS#1
// private key (RSA or Ed25519) or a PKIX public key. Nothing secret is
// kept, and the key material never appears in errors.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: reading DKIM key: %w", err)
	}
	k, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// ParsePublicKeyPEM is LoadPublicKey on bytes already read.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("dnscheck: DKIM key is not PEM")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("dnscheck: DKIM key has unsupported PEM type %q", block.Type)
	}
	if err != nil {
		// The x509 errors describe structure, never key bytes.
		return nil, fmt.Errorf("dnscheck: parsing DKIM key: %v", err)
	}
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch key.(type) {
	case *rsa.PublicKey, ed25519.PublicKey:
		return key, nil
	default:
		return nil, fmt.Errorf("dnscheck: DKIM key has unsupported type %T (want RSA or Ed25519)", key)
	}
}
