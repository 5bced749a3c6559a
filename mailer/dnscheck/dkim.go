package dnscheck

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MinRSABits is the RSA modulus size below which a DKIM key is an error:
// RFC 8301 section 3.2 requires verifiers to reject keys under 1024 bits.
const MinRSABits = 1024

// RecommendedRSABits is the RSA modulus size below which a DKIM key gets a
// warning: RFC 8301 section 3.2 says signers SHOULD use at least 2048 bits.
const RecommendedRSABits = 2048

// DKIMKey is a parsed DKIM key record (RFC 6376 section 3.6.1; RFC 8463 for
// Ed25519).
type DKIMKey struct {
	// KeyType is the k= tag: "rsa" (the default) or "ed25519".
	KeyType string
	// PublicKey is an *rsa.PublicKey or an ed25519.PublicKey; nil when the
	// key is revoked.
	PublicKey crypto.PublicKey
	// Revoked is true when p= is empty (RFC 6376 section 3.6.1).
	Revoked bool
	// Bits is the RSA modulus size, or 256 for Ed25519.
	Bits int
	// Testing is t=y: the domain is testing DKIM, and verifiers may treat
	// signed mail as unsigned.
	Testing bool
	// Strict is t=s: the i= domain must equal d= exactly.
	Strict bool
	// HashAlgs is the h= tag (empty: all algorithms allowed).
	HashAlgs []string
	// Services is the s= tag (empty: "*").
	Services []string
	// Notes is the n= tag.
	Notes string
}

// ParseDKIMKey parses the TXT record published at
// <selector>._domainkey.<domain>.
func ParseDKIMKey(record string) (*DKIMKey, error) {
	tags, err := parseTagList(record)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: DKIM key record: %v", err)
	}
	k := &DKIMKey{KeyType: "rsa"}
	var p *string
	for i, t := range tags {
		switch t.name {
		case "v":
			// "If specified, this tag MUST be set to DKIM1 ... and
			// MUST be the first tag in the record."
			if i != 0 {
				return nil, errors.New("dnscheck: DKIM key record: v= is not the first tag")
			}
			if t.value != "DKIM1" {
				return nil, fmt.Errorf("dnscheck: DKIM key record: version %q is not DKIM1", t.value)
			}
		case "k":
			switch t.value {
			case "rsa", "ed25519":
				k.KeyType = t.value
			default:
				return nil, fmt.Errorf("dnscheck: DKIM key record: unknown key type k=%s", t.value)
			}
		case "p":
			v := removeWSP(t.value)
			p = &v
		case "t":
			for _, f := range strings.Split(t.value, ":") {
				switch trimWSP(f) {
				case "y":
					k.Testing = true
				case "s":
					k.Strict = true
				}
				// Unknown flags MUST be ignored.
			}
		case "h":
			k.HashAlgs = splitColon(t.value)
		case "s":
			k.Services = splitColon(t.value)
		case "n":
			k.Notes = t.value
		}
		// Unrecognised tags MUST be ignored (RFC 6376 section 3.6.1).
	}
	if p == nil {
		return nil, errors.New("dnscheck: DKIM key record has no p= tag")
	}
	if *p == "" {
		k.Revoked = true
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(*p)
	if err != nil {
		return nil, fmt.Errorf("dnscheck: DKIM key record: p= is not valid base64: %v", err)
	}
	switch k.KeyType {
	case "rsa":
		pub, err := parseRSAKey(der)
		if err != nil {
			return nil, err
		}
		k.PublicKey, k.Bits = pub, pub.N.BitLen()
	case "ed25519":
		// RFC 8463 section 4.2: the raw 32-byte public key.
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("dnscheck: DKIM key record: Ed25519 key is %d bytes, want %d", len(der), ed25519.PublicKeySize)
		}
		k.PublicKey, k.Bits = ed25519.PublicKey(der), 256
	}
	return k, nil
}

// parseRSAKey reads the RSA key as a SubjectPublicKeyInfo (RFC 6376 section
// 3.6.1), or as a bare RSAPublicKey, which some tools publish and verifiers
// accept.
func parseRSAKey(der []byte) (*rsa.PublicKey, error) {
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		rsaPub, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("dnscheck: DKIM key record: k=rsa but p= holds a %T", pub)
		}
		return rsaPub, nil
	}
	if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return pub, nil
	}
	return nil, errors.New("dnscheck: DKIM key record: p= is not an RSA public key")
}

func splitColon(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ":") {
		if f = trimWSP(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkDKIM looks up the selector's key record and compares it with the
// configured key.
func (c *checker) checkDKIM(ctx context.Context) error {
	if c.cfg.Selector == "" {
		c.rep.note("no DKIM selector configured; DKIM was not checked")
		return nil
	}
	name := c.cfg.Selector + "._domainkey." + c.cfg.SigningDomain
	txts, err := c.lookupTXT(ctx, name)
	if err != nil {
		return err
	}
	switch len(txts) {
	case 0:
		c.rep.add(DKIMMissing, SeverityError, fmt.Sprintf("no DKIM key record at %s.", name))
		return nil
	case 1:
	default:
		// RFC 6376 section 3.6.2.2 leaves the choice to the verifier:
		// the outcome is unpredictable.
		c.rep.add(DKIMSyntax, SeverityError, fmt.Sprintf("%s has %d TXT records; a key record must be the only one.", name, len(txts)))
		return nil
	}
	key, err := ParseDKIMKey(txts[0])
	if err != nil {
		c.rep.add(DKIMSyntax, SeverityError, fmt.Sprintf("%s: %s.", name, strings.TrimPrefix(err.Error(), "dnscheck: ")))
		return nil
	}
	if key.Revoked {
		c.rep.add(DKIMRevoked, SeverityError, fmt.Sprintf("%s has an empty p=: the key is revoked and every signature fails.", name))
		return nil
	}
	if c.cfg.PublicKey != nil {
		type equaler interface{ Equal(crypto.PublicKey) bool }
		if eq, ok := c.cfg.PublicKey.(equaler); !ok || !eq.Equal(key.PublicKey) {
			c.rep.add(DKIMKeyMismatch, SeverityError, fmt.Sprintf(
				"%s publishes a %s key that is not the public half of the configured %s key; signatures will fail.",
				name, describeKey(key.PublicKey), describeKey(c.cfg.PublicKey)))
		}
	}
	if key.KeyType == "rsa" {
		switch {
		case key.Bits < MinRSABits:
			c.rep.add(DKIMWeakKey, SeverityError, fmt.Sprintf("%s publishes a %d-bit RSA key; verifiers reject keys under %d bits (RFC 8301).", name, key.Bits, MinRSABits))
		case key.Bits < RecommendedRSABits:
			c.rep.add(DKIMWeakKey, SeverityWarning, fmt.Sprintf("%s publishes a %d-bit RSA key; use at least %d bits (RFC 8301).", name, key.Bits, RecommendedRSABits))
		}
	}
	if key.Testing {
		c.rep.add(DKIMTesting, SeverityWarning, fmt.Sprintf("%s has t=y: the domain says it is testing DKIM.", name))
	}
	return nil
}

func describeKey(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("%d-bit RSA", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}
