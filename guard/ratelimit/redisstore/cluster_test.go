package redisstore

import (
	"strings"
	"testing"

	"github.com/formguard/formguard/guard/ratelimit"
)

// crc16 is CRC-16/XMODEM, the hash of Redis Cluster keys (cluster spec,
// "Keys distribution model").
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slot follows the spec: hash only the first {...} when non-empty.
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16([]byte(key)) % 16384
}

func TestCRC16Vector(t *testing.T) {
	// The reference value from the Redis Cluster specification.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 = %#x, want 0x31c3", got)
	}
}

func TestDecisionKeysShareOneSlot(t *testing.T) {
	for _, prefix := range []string{"", "fg", "site-2", "a.b_c"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			s := newStore(t, Config{Client: newUnreachableClient(t), Prefix: prefix})
			rules := []ratelimit.Rule{
				{Tier: ratelimit.TierIP, Key: "203.0.113.7", Limit: lim("5/h")},
				{Tier: ratelimit.TierIP, Key: "2001:db8::/64", Limit: lim("20/h")},
				{Tier: ratelimit.TierSender, Key: "a@example.test", Limit: lim("3/h")},
				{Tier: ratelimit.TierRecipient, Key: "b@example.test", Limit: lim("2/d")},
				{Tier: ratelimit.TierForm, Key: "share", Limit: lim("100/h")},
				{Tier: ratelimit.TierGlobal, Key: "", Limit: lim("200/h")},
				{Tier: "Weird Tier {x}", Key: "{evil}", Limit: lim("1/s")},
			}
			var keys []string
			for i := range rules {
				keys = append(keys, s.ruleKey(&rules[i]))
				if rules[i].Tier == ratelimit.TierIP {
					record, until := s.banKeys(rules[i].Key)
					keys = append(keys, record, until)
				}
			}
			want := slot(keys[0])
			seen := map[string]bool{}
			for _, k := range keys {
				if slot(k) != want {
					t.Errorf("key %q is in slot %d, want %d with the others", k, slot(k), want)
				}
				if strings.ContainsAny(k, " \r\n") || strings.Count(k, "{") != 1 {
					t.Errorf("key %q is not a clean single-tag key", k)
				}
				if seen[k] {
					t.Errorf("key %q used twice for different rules", k)
				}
				seen[k] = true
			}
		})
	}
}
