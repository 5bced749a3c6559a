package guard

import (
	"net/netip"
	"sync"
	"testing"
)

// TestClientKeyCache: a cached key is the bucket's own key, whatever else
// went through the cache (colliding slots included), also concurrently.
func TestClientKeyCache(t *testing.T) {
	g, err := New(Config{Domain: "example.test", Origins: []string{"https://example.test"},
		KeySecret: []byte("0123456789abcdef"), Forms: map[string]Form{"c": {To: []string{"a@example.test"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	uncached := func(ip netip.Addr) string {
		k := g.macs.Get().(*keyedHash)
		k.buf = Bucket(ip).AppendTo(append(k.buf[:0], "ip\x00"...))
		return g.finish(k)
	}
	var addrs []netip.Addr
	for i := range 5000 { // more than the slots: collisions evict
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	addrs = append(addrs, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8:0:1::1"))
	want := make(map[netip.Addr]string, len(addrs))
	for _, a := range addrs {
		want[a] = uncached(a)
	}
	if want[addrs[5000]] != want[addrs[5001]] || want[addrs[5000]] == want[addrs[5002]] {
		t.Fatal("IPv6 keys are not per /64")
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range addrs {
					a := addrs[(i*(w+1)+round)%len(addrs)]
					if got := g.ClientKey(a); got != want[a] {
						t.Errorf("ClientKey(%v) = %q, want %q", a, got, want[a])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
