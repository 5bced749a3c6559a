package redisstore

import (
	"testing"

	"github.com/formguard/formguard/guard/ratelimit"
)

// TestKeyLayout pins the documented key names. A change here renames every
// key a running deployment holds (its buckets and bans would be forgotten
// on upgrade), so it must be deliberate; the golden values were produced
// by the code before allocation-free key building.
func TestKeyLayout(t *testing.T) {
	s := newStore(t, Config{Client: newUnreachableClient(t), Prefix: "fg"})
	ip := ratelimit.Rule{Tier: ratelimit.TierIP, Key: "203.0.113.7", Limit: lim("5/h")}
	odd := ratelimit.Rule{Tier: "Weird Tier {x}", Key: "{evil}", Limit: lim("1/s")}
	global := ratelimit.Rule{Tier: ratelimit.TierGlobal, Key: "", Limit: lim("200/h")}
	record, until := s.banKeys(ip.Key)
	tests := []struct{ name, got, want string }{
		{"bucket", s.ruleKey(&ip), "fg:{fg}:r:ip:93ccb71d0d3f265ee25a7760c8b58040"},
		{"bucket of an unreadable tier", s.ruleKey(&odd), "fg:{fg}:r:x:5a4103e28ce1ad822e1150f7a29428c6"},
		{"bucket of an empty key", s.ruleKey(&global), "fg:{fg}:r:global:c559748275375b6d9b9a66df7dcda8cf"},
		{"ban record", record, "fg:{fg}:b:1d4d301954c74f9dd2a1eab2fd7f9e98"},
		{"ban until", until, "fg:{fg}:u:1d4d301954c74f9dd2a1eab2fd7f9e98"},
		{"ban until, appended", string(s.appendBanUntilKey([]byte("x"), ip.Key)), "x" + until},
		{"replay", hashHex("replay", "token-4"), "099903eae68f7d276bcd71784eeaa11b"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s key = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestKeyBuildingDoesNotAllocate(t *testing.T) {
	s := newStore(t, Config{Client: newUnreachableClient(t)})
	r := ratelimit.Rule{Tier: ratelimit.TierRecipient, Key: "c3f1e0a9b8d7c6e5f4a3b2c1d0e9f8a7", Limit: lim("2/d")}
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		buf = s.appendRuleKey(buf[:0], &r)
		buf = s.appendBanUntilKey(buf, r.Key)
	})
	if allocs != 0 {
		t.Errorf("building two keys allocates %.0f times, want 0", allocs)
	}
}
