package guard

import (
	"net/netip"
	"sync/atomic"
	"unsafe"
)

// clientKeySlots is the size of the client key cache: enough for the
// clients of a busy minute, small enough (about 60 KiB when full) to
// never matter.
const (
	clientKeyBits  = 10
	clientKeySlots = 1 << clientKeyBits
)

// clientKeyCache remembers the keyed hashes of recently seen client
// buckets, so a client sending many requests (a flood, typically) is
// hashed once rather than per request. It is direct-mapped: each bucket
// has one slot, a newer bucket replaces an older one, and a lookup compares
// the whole bucket, so an answer is always the bucket's own key. A miss
// costs what hashing cost before (one allocation), a hit nothing.
type clientKeyCache struct {
	slots [clientKeySlots]atomic.Pointer[clientKeyEntry]
}

// clientKeyEntry is immutable once published; the key string points into
// its own array.
type clientKeyEntry struct {
	bucket netip.Prefix
	key    [24]byte
}

func slotOf(b netip.Prefix) int {
	a := b.Addr().As16()
	hi := uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(a[4])<<24 | uint64(a[5])<<16 | uint64(a[6])<<8 | uint64(a[7])
	lo := uint64(a[8])<<56 | uint64(a[9])<<48 | uint64(a[10])<<40 | uint64(a[11])<<32 |
		uint64(a[12])<<24 | uint64(a[13])<<16 | uint64(a[14])<<8 | uint64(a[15])
	h := (hi ^ lo*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	return int(h >> (64 - clientKeyBits))
}

func (c *clientKeyCache) get(b netip.Prefix) (string, bool) {
	e := c.slots[slotOf(b)].Load()
	if e == nil || e.bucket != b {
		return "", false
	}
	return unsafe.String(&e.key[0], len(e.key)), true
}

// put stores key (24 hex characters) for b and returns the cached copy.
func (c *clientKeyCache) put(b netip.Prefix, key *[24]byte) string {
	e := &clientKeyEntry{bucket: b, key: *key}
	c.slots[slotOf(b)].Store(e)
	return unsafe.String(&e.key[0], len(e.key))
}
