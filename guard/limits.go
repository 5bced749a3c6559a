package guard

import (
	"context"
	"github.com/formguard/formguard/post"
	"net/http"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// The rate limits are decided in two store calls (see "Order of checks" in
// the package documentation):
//
//   - limitClient, before the bot-defence verifiers: the client's own tiers
//     (its address and its network). A store honouring bans does so in the
//     call holding the TierIP rule, so a banned client is refused here too.
//   - limitShared, after them: the tiers other clients share (form, global,
//     the Reply-To address, each recipient), all or nothing.
//
// The first call consumes the client's own budget even when a later check
// refuses the post. That is deliberate: each single-use token the replay
// store records and each siteverify call is paid for by one unit of the
// sending client's budget, which bounds what one client can make the
// service spend. The shared tiers are consumed only by an admitted post.

// limitClient decides the client's own tiers: its address (IPv4, IPv6 /64)
// and its network (IPv4 /24, IPv6 /48), so one allocation cannot rotate
// through fresh budgets.
func (g *Guard) limitClient(ctx context.Context, w http.ResponseWriter, p *policy, sub *post.Submission) *Error {
	buf := g.rules.Get().(*[8]ratelimit.Rule)
	defer g.putRules(buf)
	rules := append(buf[:0],
		ratelimit.Rule{Tier: ratelimit.TierIP, Key: sub.ClientKey, Limit: p.limits.PerIP},
		ratelimit.Rule{Tier: ratelimit.TierNetwork, Key: g.networkKey(sub.ClientIP), Limit: p.limits.PerNetwork},
	)
	return g.decide(ctx, w, rules, sub.ClientKey)
}

// limitShared decides every shared tier of an otherwise accepted post in
// ONE store call that consumes all of them or none.
//
// The rules live in a pooled array (passed through the Store interface, a
// stack array would escape): a Store reads them during Allow and keeps
// nothing, as an io.Writer keeps nothing of what it is given.
func (g *Guard) limitShared(ctx context.Context, w http.ResponseWriter, p *policy, sub *post.Submission) *Error {
	buf := g.rules.Get().(*[8]ratelimit.Rule)
	defer g.putRules(buf)
	rules := append(buf[:0],
		ratelimit.Rule{Tier: ratelimit.TierForm, Key: p.name, Limit: p.limits.PerForm},
		ratelimit.Rule{Tier: ratelimit.TierGlobal, Key: "*", Limit: g.global},
	)
	if sub.ReplyTo != "" {
		rules = append(rules, ratelimit.Rule{Tier: ratelimit.TierSender, Key: g.hashKey("sender", limitAddress(sub.ReplyTo)), Limit: p.limits.PerSender})
	}
	if p.form.Kind == post.Share {
		for _, a := range sub.Recipients {
			rules = append(rules, ratelimit.Rule{Tier: ratelimit.TierRecipient, Key: g.hashKey("rcpt", limitAddress(a)), Limit: p.limits.PerRecipient})
		}
	}
	return g.decide(ctx, w, rules, sub.ClientKey)
}

func (g *Guard) putRules(buf *[8]ratelimit.Rule) {
	clear(buf[:])
	g.rules.Put(buf)
}

// decide makes one store call. Only a refusal carries rate-limit headers:
// an accept carries none, so the decoy a honeypot hit is answered with
// cannot be told from a real accept by its headers.
func (g *Guard) decide(ctx context.Context, w http.ResponseWriter, rules []ratelimit.Rule, clientKey string) *Error {
	d, err := g.store.Allow(ctx, rules)
	if err != nil {
		return ErrLimiterUnavailable.with(err)
	}
	if d.Allowed {
		return nil
	}
	if w != nil {
		ratelimit.SetHeaders(w.Header(), rules, d)
	}
	e := ErrRateLimited
	if d.Banned {
		e = ErrBanned
	}
	tier := "?"
	if d.Rule >= 0 && d.Rule < len(rules) {
		tier = rules[d.Rule].Tier
	}
	out := e.withText("tier ", tier, "")
	out.RetryAfter = d.RetryAfter
	// A full form or global tier is no fault of this client: harder
	// puzzles are for clients that used up budgets of their own making.
	if d.Banned || (tier != ratelimit.TierForm && tier != ratelimit.TierGlobal) {
		g.esc.mark(clientKey, g.now().Add(EscalateWindow))
	}
	return out
}

// limitAddress is the spelling of an address the sender and recipient
// tiers count it under, so that one mailbox has one budget however it is
// written. Mail still goes to the address as given. It folds:
//
//   - case, in the local part too: RFC 5321 section 2.4 lets a host treat
//     local parts as case-sensitive, but mailbox providers do not;
//   - the domain to IDNA ASCII (punycode), without trailing dots;
//   - a subaddress: everything from the first '+' after the local part's
//     first character (RFC 5233's separator as the big providers use it);
//   - dots in a gmail.com local part, which Gmail ignores, and
//     googlemail.com, Gmail's other name, to gmail.com.
//
// It is total (any string gets a key) and idempotent.
func limitAddress(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return strings.ToLower(a)
	}
	local, domain := strings.ToLower(a[:at]), limitDomain(a[at+1:])
	if len(local) > 1 {
		if i := strings.IndexByte(local[1:], '+'); i >= 0 {
			local = local[:i+1]
		}
	}
	if domain == "googlemail.com" {
		domain = "gmail.com"
	}
	if domain == "gmail.com" {
		local = strings.ReplaceAll(local, ".", "")
	}
	return local + "@" + domain
}

// limitDomain lower-cases d and converts it to IDNA ASCII; a domain the
// IDNA profile refuses is kept lower-cased (addresses reaching the limits
// have passed ParseAddress, so this is for totality, not for use).
func limitDomain(d string) string {
	d = strings.TrimRight(strings.ToLower(d), ".")
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			if p, err := idnaProfile.ToASCII(d); err == nil {
				d = strings.TrimRight(strings.ToLower(p), ".")
			}
			break
		}
	}
	return d
}

// penalize reports an abusive request to the store's ban list, if it keeps
// one. It is the one store call made for a locally rejected request, and
// only for rejections that no legitimate browser produces.
//
// The answer to the request never depends on the ban, so a store whose
// Penalize is a round trip (ratelimit.AsyncBanner) records it in the
// background; the store makes the client's next request wait for it.
func (g *Guard) penalize(ctx context.Context, clientKey string) {
	if g.banner == nil {
		return
	}
	if g.async != nil {
		ctx = context.WithoutCancel(ctx)
		g.async.PenalizeAsync(ctx, clientKey, func(ban time.Duration, err error) { g.logBan(ctx, clientKey, ban, err) })
		return
	}
	ban, err := g.banner.Penalize(ctx, clientKey)
	g.logBan(ctx, clientKey, ban, err)
}
