package attack

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
)

// DKIMRecord reads a PEM private key (PKCS#1 or PKCS#8 RSA, PKCS#8
// Ed25519) and returns the DNS TXT record publishing its public half
// (RFC 6376 3.6.1; RFC 8463 for k=ed25519). The audit feeds this record to
// go-msgauth's verifier, so signatures are checked against the key file
// itself rather than anything the mailer says about it.
func DKIMRecord(keyFile string) (string, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return "", fmt.Errorf("attack: dkim key: %w", err)
	}
	return DKIMRecordPEM(data)
}

// DKIMRecordPEM is DKIMRecord for PEM already in memory.
func DKIMRecordPEM(data []byte) (string, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", fmt.Errorf("attack: dkim key: no PEM block")
	}
	var key crypto.PrivateKey
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return "", fmt.Errorf("attack: dkim key: %w", err)
	}
	return dkimRecordFor(key)
}

func dkimRecordFor(key crypto.PrivateKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			return "", err
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PrivateKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)), nil
	case *ed25519.PrivateKey:
		return dkimRecordFor(*k)
	default:
		return "", fmt.Errorf("attack: dkim key: unsupported key type %T", key)
	}
}
