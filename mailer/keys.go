package mailer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	mail "github.com/wneessen/go-mail"
)

// Key sizes. RFC 8301 3.2 requires verifiers to accept 1024..4096-bit RSA
// keys and signers to use at least 1024; 1024-bit keys are factorable by
// well-funded attackers, so formguard refuses anything below 2048.
const (
	MinRSABits     = 2048
	DefaultRSABits = 2048
	MaxRSABits     = 4096
)

// GenerateKey returns a new DKIM private key as PKCS#8 PEM. alg is "rsa"
// (bits 0 means DefaultRSABits; 2048..4096 accepted) or "ed25519" (RFC
// 8463; bits must be 0 or 256).
func GenerateKey(alg string, bits int) ([]byte, error) {
	var key any
	switch strings.ToLower(alg) {
	case "rsa":
		if bits == 0 {
			bits = DefaultRSABits
		}
		if bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("mailer: RSA key size %d outside %d..%d", bits, MinRSABits, MaxRSABits)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("mailer: generating RSA key: %w", err)
		}
		key = k
	case "ed25519":
		if bits != 0 && bits != 256 {
			return nil, fmt.Errorf("mailer: Ed25519 keys have no size option (got %d)", bits)
		}
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("mailer: generating Ed25519 key: %w", err)
		}
		key = k
	default:
		return nil, fmt.Errorf("mailer: unknown key algorithm %q (want rsa or ed25519)", alg)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("mailer: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey decodes a DKIM private key from PEM: PKCS#1 ("RSA PRIVATE
// KEY") or PKCS#8 ("PRIVATE KEY") holding RSA (>= MinRSABits) or Ed25519.
// Error messages never include key material.
func ParseKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("mailer: DKIM key: no PEM block found")
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, errors.New("mailer: DKIM key: encrypted keys are not supported; store the key unencrypted with mode 0600")
	}
	// go-mail's own decoder, so the key is one its signer accepts.
	s, err := mail.PrivKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key: %s block: cannot parse as RSA or Ed25519 (PKCS#1 or PKCS#8)", block.Type)
	}
	if err := checkSigner(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkSigner accepts the key types DKIM defines and go-mail signs with.
func checkSigner(s crypto.Signer) error {
	switch k := s.(type) {
	case *rsa.PrivateKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Errorf("mailer: DKIM key: RSA key of %d bits refused (minimum %d)", n, MinRSABits)
		}
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return errors.New("mailer: DKIM key: malformed Ed25519 key")
		}
	case nil:
		return errors.New("mailer: DKIM key: nil signer")
	default:
		return fmt.Errorf("mailer: DKIM key: unsupported signer type %T (want *rsa.PrivateKey or ed25519.PrivateKey)", s)
	}
	return nil
}

// LoadKey reads and parses a PEM key file (see ParseKey).
func LoadKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM key: %w", err)
	}
	return ParseKey(b)
}

// DNSRecord returns the TXT record publishing pub for selector at domain
// (RFC 6376 3.6.2.2): name is "<selector>._domainkey.<domain>" (no
// trailing dot) and txt the record's value. RSA keys are published as
// SubjectPublicKeyInfo (RFC 6376 3.6.1), Ed25519 keys as the raw 32 bytes
// (RFC 8463 4). An RSA-2048 value exceeds 255 bytes; see SplitTXT.
func DNSRecord(selector, domain string, pub crypto.PublicKey) (name, txt string, err error) {
	if !validLabels(selector) {
		return "", "", fmt.Errorf("mailer: DKIM selector %q is not a valid DNS name", selector)
	}
	domain = strings.TrimSuffix(domain, ".")
	if !validLabels(domain) || !strings.Contains(domain, ".") {
		return "", "", fmt.Errorf("mailer: domain %q is not a valid DNS name", domain)
	}
	var k, p string
	switch pk := pub.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < MinRSABits {
			return "", "", fmt.Errorf("mailer: RSA key of %d bits refused (minimum %d)", pk.N.BitLen(), MinRSABits)
		}
		der, err := x509.MarshalPKIXPublicKey(pk)
		if err != nil {
			return "", "", fmt.Errorf("mailer: encoding public key: %w", err)
		}
		k, p = "rsa", base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		if len(pk) != ed25519.PublicKeySize {
			return "", "", errors.New("mailer: malformed Ed25519 public key")
		}
		k, p = "ed25519", base64.StdEncoding.EncodeToString(pk)
	default:
		return "", "", fmt.Errorf("mailer: unsupported public key type %T", pub)
	}
	return selector + "._domainkey." + strings.ToLower(domain), "v=DKIM1; k=" + k + "; p=" + p, nil
}

// SplitTXT splits a TXT value into character-strings of at most 255 bytes
// (RFC 1035 3.3.14), as zone files and DNS APIs need; resolvers join them.
func SplitTXT(txt string) []string {
	var out []string
	for len(txt) > 255 {
		out = append(out, txt[:255])
		txt = txt[255:]
	}
	return append(out, txt)
}

// validLabels reports whether s is dot-separated LDH labels (RFC 1035 2.3.1,
// underscores allowed as in selectors and service names).
func validLabels(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
