package guard

import (
	"context"
	"github.com/formguard/formguard/post"
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync/atomic"
)

// Bounds of the pass memo: passMemoSlots bodies of at most passMemoMaxBody
// bytes each, so a full memo holds under 1 MiB.
const (
	passMemoBits    = 8
	passMemoSlots   = 1 << passMemoBits
	passMemoMaxBody = 2048
)

// passMemo remembers posts that passed the local checks (steps 3 to 7 of
// the package documentation) and were then refused by the client's own
// limits, so that the same post sent again is taken to step 8 without
// being parsed and validated again. Those steps are a pure function of the
// form's policy, the Content-Type field and the body, and an entry matches
// only when all three are equal byte for byte, so the answer (status,
// headers, body, log line) is the one the full check gives: a flood
// repeating one post is refused at the cost of reading it. A post the
// limit admits is parsed in full afterwards, as any other.
//
// It is direct-mapped like clientKeyCache: one slot per hash, a newer post
// replaces an older one, lookups never allocate. The hash is keyed (a
// random seed per Guard), so a client cannot aim its posts at another's
// slot; a collision only costs a miss.
type passMemo struct {
	seed  maphash.Seed
	slots [passMemoSlots]atomic.Pointer[passEntry]
}

// passEntry is immutable once published.
type passEntry struct {
	form, ctype, body string
}

func (m *passMemo) slot(form, ctype string, body []byte) *atomic.Pointer[passEntry] {
	var h maphash.Hash
	h.SetSeed(m.seed)
	_, _ = h.WriteString(form)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(ctype)
	_ = h.WriteByte(0)
	_, _ = h.Write(body)
	return &m.slots[h.Sum64()>>(64-passMemoBits)]
}

// has reports whether this very post passed the local checks before.
func (m *passMemo) has(form, ctype string, body []byte) bool {
	if len(body) > passMemoMaxBody {
		return false
	}
	e := m.slot(form, ctype, body).Load()
	return e != nil && e.form == form && e.ctype == ctype && e.body == string(body)
}

// add remembers a post that passed the local checks.
func (m *passMemo) add(form, ctype string, body []byte) {
	if len(body) > passMemoMaxBody {
		return
	}
	m.slot(form, ctype, body).Store(&passEntry{form: form, ctype: ctype, body: string(body)})
}

// limitKnown runs step 8 for a post the memo says passes steps 3 to 7,
// before they run: a refusal is final, as it would be after them; an
// admitted post goes on to be parsed (it passes again) and is not limited
// a second time.
func (g *Guard) limitKnown(ctx context.Context, w http.ResponseWriter, p *policy, ctype string, body []byte, ip netip.Addr, clientKey string) (admitted bool, e *Error) {
	if !g.passed.has(p.name, ctype, body) {
		return false, nil
	}
	sub := post.Submission{ClientIP: ip, ClientKey: clientKey}
	if e := g.limitClient(ctx, w, p, &sub); e != nil {
		return false, e
	}
	return true, nil
}
