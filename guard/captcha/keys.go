package captcha

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
)

// MinKeyLen is the shortest HMAC key accepted for proof-of-work challenges
// and form tokens: 32 bytes, the output size of SHA-256 (RFC 2104 section 3
// recommends keys no shorter than the hash output).
const MinKeyLen = 32

// checkKeys validates a key ring: at least one key, each at least
// MinKeyLen bytes. The first key signs; every key verifies, so a new key is
// rotated in by prepending it and an old one retired by removing it once
// everything it signed has expired. The keys are copied.
func checkKeys(prefix string, keys [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %sKeys is required (at least one key of %d bytes or more)", ErrConfig, prefix, MinKeyLen)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("%w: %sKeys[%d] is %d bytes, need at least %d", ErrConfig, prefix, i, len(k), MinKeyLen)
		}
		out[i] = append([]byte(nil), k...)
	}
	return out, nil
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}
