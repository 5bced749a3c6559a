package redisstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/formguard/formguard/guard/ratelimit"
)

// Key layout, all under one hash tag (see the package docs on Cluster):
//
//	PREFIX:{PREFIX}:r:TIER:HASH   a rule's TAT
//	PREFIX:{PREFIX}:b:HASH        a client key's ban record
//	PREFIX:{PREFIX}:u:HASH        the end of its ban, only while banned
//	PREFIX:rp:HASH                a used CAPTCHA/form token (own slot)
//
// HASH is the first 128 bits of SHA-256 over the caller's key (and, for
// rules, the limit, so two limits on one key are separate budgets). The
// guard already passes hashed keys; hashing again bounds the key length
// and keeps every byte printable whatever a caller passes.

// hashHex is the hex of the first 16 bytes of SHA-256(parts joined by NUL).
func hashHex(parts ...string) string { return string(appendHashHex(nil, parts...)) }

// appendHashHex appends hashHex(parts...) to dst. The parts are joined in
// a stack buffer (keys the guard passes are short hashes), so a decision
// hashes without allocating.
func appendHashHex(dst []byte, parts ...string) []byte {
	var stack [256]byte
	in := stack[:0]
	for i, p := range parts {
		if i > 0 {
			in = append(in, 0)
		}
		in = append(in, p...)
	}
	sum := sha256.Sum256(in)
	return hex.AppendEncode(dst, sum[:16])
}

// appendRuleKey appends the key of r's bucket (its TAT) to dst.
func (s *Store) appendRuleKey(dst []byte, r *ratelimit.Rule) []byte {
	var lim [16]byte
	binary.LittleEndian.PutUint64(lim[:8], uint64(r.Limit.Count))
	binary.LittleEndian.PutUint64(lim[8:], uint64(r.Limit.Period))
	dst = append(dst, s.base...)
	dst = append(dst, "r:"...)
	dst = append(dst, safeTier(r.Tier)...)
	dst = append(dst, ':')
	return appendHashHex(dst, r.Key, string(lim[:]))
}

// appendBanUntilKey appends the key of the end of key's ban in force.
func (s *Store) appendBanUntilKey(dst []byte, key string) []byte {
	dst = append(dst, s.base...)
	dst = append(dst, "u:"...)
	return appendHashHex(dst, "ban", key)
}

func (s *Store) ruleKey(r *ratelimit.Rule) string { return string(s.appendRuleKey(nil, r)) }

// banKeys are a client key's ban record and its ban-until key.
func (s *Store) banKeys(key string) (record, until string) {
	h := hashHex("ban", key)
	return s.base + "b:" + h, s.base + "u:" + h
}

// safeTier keeps a tier name readable in keys when it is a short lowercase
// label (all of the guard's are) and replaces it otherwise.
func safeTier(t string) string {
	if len(t) == 0 || len(t) > 16 {
		return "x"
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return "x"
		}
	}
	return t
}
