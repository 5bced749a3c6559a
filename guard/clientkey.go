package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/netip"
	"sync/atomic"
	"unsafe"
)

// keyedHash is a pooled HMAC with scratch buffers, so hashing a key costs
// one allocation (the result).
type keyedHash struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte // hash.Hash.Sum's destination: through an interface it would escape
}

// ClientKey is the hashed rate-limit key of a client (its IPv4 address or
// IPv6 /64), as used in logs, stores and captcha.Request.
func (g *Guard) ClientKey(ip netip.Addr) string {
	b := Bucket(ip)
	if key, ok := g.clientKeys.get(b); ok {
		return key
	}
	k := g.macs.Get().(*keyedHash)
	k.buf = b.AppendTo(append(k.buf[:0], "ip\x00"...))
	var out [24]byte
	g.sum(k, &out)
	return g.clientKeys.put(b, &out)
}

// hashKey is a keyed hash, so stores and logs never see IPs or addresses.
func (g *Guard) hashKey(tier, v string) string {
	k := g.macs.Get().(*keyedHash)
	k.buf = append(append(append(k.buf[:0], tier...), 0), v...)
	return g.finish(k)
}

func (g *Guard) finish(k *keyedHash) string {
	var out [24]byte
	g.sum(k, &out)
	return string(out[:])
}

// sum writes the hex of the first 96 bits of k's HMAC of k.buf to out and
// returns k to the pool.
func (g *Guard) sum(k *keyedHash, out *[24]byte) {
	k.h.Reset()
	k.h.Write(k.buf)
	hex.Encode(out[:], k.h.Sum(k.sum[:0])[:12])
	if cap(k.buf) <= 1024 {
		g.macs.Put(k)
	}
}

// networkOf is the allocation a client address belongs to: its IPv4 /24 or
// IPv6 /48.
func networkOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// networkKey is the keyed hash of ip's network, cached like ClientKey.
func (g *Guard) networkKey(ip netip.Addr) string {
	b := networkOf(ip)
	if key, ok := g.netKeys.get(b); ok {
		return key
	}
	k := g.macs.Get().(*keyedHash)
	k.buf = b.AppendTo(append(k.buf[:0], "net\x00"...))
	var out [24]byte
	g.sum(k, &out)
	return g.netKeys.put(b, &out)
}

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
