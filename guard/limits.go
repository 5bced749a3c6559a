package guard

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// limit builds every tier of the request and decides them in ONE store call.
//
// The rules live in a pooled array (passed through the Store interface, a
// stack array would escape): a Store reads them during Allow and keeps
// nothing, as an io.Writer keeps nothing of what it is given.
func (g *Guard) limit(ctx context.Context, w http.ResponseWriter, p *policy, sub *Submission) *Error {
	buf := g.rules.Get().(*[8]ratelimit.Rule)
	defer func() {
		clear(buf[:])
		g.rules.Put(buf)
	}()
	rules := append(buf[:0],
		ratelimit.Rule{Tier: ratelimit.TierIP, Key: sub.ClientKey, Limit: p.limits.PerIP},
		ratelimit.Rule{Tier: ratelimit.TierForm, Key: p.name, Limit: p.limits.PerForm},
		ratelimit.Rule{Tier: ratelimit.TierGlobal, Key: "*", Limit: g.global},
	)
	if sub.ReplyTo != "" {
		rules = append(rules, ratelimit.Rule{Tier: ratelimit.TierSender, Key: g.hashKey("sender", strings.ToLower(sub.ReplyTo)), Limit: p.limits.PerSender})
	}
	if p.form.Kind == KindShare {
		for _, a := range sub.Recipients {
			rules = append(rules, ratelimit.Rule{Tier: ratelimit.TierRecipient, Key: g.hashKey("rcpt", strings.ToLower(a)), Limit: p.limits.PerRecipient})
		}
	}
	d, err := g.store.Allow(ctx, rules)
	if err != nil {
		return ErrLimiterUnavailable.with(err)
	}
	if w != nil {
		ratelimit.SetHeaders(w.Header(), rules, d)
	}
	if !d.Allowed {
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
		g.esc.mark(sub.ClientKey, g.now().Add(EscalateWindow))
		return out
	}
	return nil
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
