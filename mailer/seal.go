package mailer

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	"github.com/formguard/formguard/mailer/outbox"
)

// sealLabel separates the seal key from every other use of the DKIM key.
const sealLabel = "formguard outbox seal v1\x00"

// sealer authenticates the unsigned messages a Mailer queues.
//
// Messages are DKIM-signed by the delivery worker, not by Deliver, so the
// outbox holds unsigned messages that the worker will sign with the site's
// key. Without a seal, anyone able to write to the spool or the Redis
// stream could have arbitrary (policy-conforming) mail signed as the site.
// The seal is an HMAC-SHA256 over the queue ID, the envelope and the raw
// message, keyed by a hash of the DKIM private key: every instance holding
// the same key (a cluster sharing a Redis stream) can verify what the others
// queued, and nobody without the key can forge one.
type sealer struct {
	key []byte
}

// newSealer derives the seal key from the DKIM private key.
func newSealer(k crypto.Signer) (*sealer, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("mailer: deriving the outbox seal key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(sealLabel))
	h.Write(der)
	return &sealer{key: h.Sum(nil)}, nil
}

// sum computes the seal of om.
func (s *sealer) sum(om *outbox.Message) []byte {
	mac := hmac.New(sha256.New, s.key)
	field := func(v string) {
		mac.Write([]byte(v))
		mac.Write([]byte{0})
	}
	field(om.ID)
	field(om.From)
	for _, to := range om.To {
		field(to)
	}
	mac.Write([]byte{0})
	mac.Write(om.Raw)
	return mac.Sum(nil)
}

// seal sets om.Seal.
func (s *sealer) seal(om *outbox.Message) {
	om.Seal = base64.RawURLEncoding.EncodeToString(s.sum(om))
}

// verify reports whether om carries a valid seal (in constant time).
func (s *sealer) verify(om *outbox.Message) bool {
	got, err := base64.RawURLEncoding.DecodeString(om.Seal)
	return err == nil && hmac.Equal(got, s.sum(om))
}
