package attack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runOutboxUnwritable: the outbox directory is replaced by a regular file
// while the service runs (as root, permissions would not stop writes), and
// the service is also started on an outbox path below a regular file.
func runOutboxUnwritable(ctx context.Context, opt Options) (*FaultResult, error) {
	res := &FaultResult{Name: FaultOutboxUnwritable}
	e, err := Setup(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if e.Cfg.RedisURL != "" {
		return nil, fmt.Errorf("%s needs the directory outbox; run it without -redis", FaultOutboxUnwritable)
	}
	if _, err := e.sendLegit(ctx, "outbox-unwritable/before", 3); err != nil {
		return nil, err
	}
	if err := outboxBroken(ctx, e, res, scale(opt, 10, 30)); err != nil {
		return nil, err
	}
	after, err := e.sendLegit(ctx, "outbox-unwritable/after", 3)
	if err != nil {
		return nil, err
	}
	okAfter := 0
	for _, a := range after {
		if a.Req.Accepted() {
			okAfter++
		}
	}
	res.check("accepts again once repaired", okAfter == len(after), "%d of %d", okAfter, len(after))
	e.Settle(1500*time.Millisecond, 60*time.Second)
	p := e.Policy()
	p.RequireAccepted = true
	res.Audit = e.Audit(p)
	e.Svc.Stop()
	if err := outboxUncreatable(ctx, e, res); err != nil {
		return nil, err
	}
	return res, nil
}

// sendLegit sends n legitimate contact posts of class, in all encodings.
func (e *Env) sendLegit(ctx context.Context, class string, n int) (Batch, error) {
	var b Batch
	for i := 0; i < n; i++ {
		b = append(b, e.LegitContact(class, Enc(i%3)))
	}
	return b, e.Send(ctx, []Batch{b})
}

// outboxBroken replaces the outbox directory with a file, sends n posts
// that must all be refused 503 outbox_unavailable (and /readyz must say
// so), and puts the directory back.
func outboxBroken(ctx context.Context, e *Env, res *FaultResult, n int) error {
	outbox := filepath.Join(e.Cfg.Dir, "outbox")
	if err := os.Rename(outbox, outbox+".moved"); err != nil {
		return fmt.Errorf("outbox-unwritable: %w", err)
	}
	if err := os.WriteFile(outbox, []byte("not a directory\n"), 0o600); err != nil {
		return err
	}
	var broken Batch
	for i := 0; i < n; i++ {
		a := e.LegitContact("outbox-unwritable", Enc(i%3))
		a.Req.Legit = false // cannot be delivered; must be refused instead
		noteAnswer(a)
		broken = append(broken, a)
	}
	if err := e.Send(ctx, []Batch{broken}); err != nil {
		return err
	}
	got503, accepted := 0, 0
	codes := make([]string, n)
	for i, a := range broken {
		if a.Req.Accepted() {
			accepted++
		}
		if codes[i] = a.Req.Note; codes[i] == "503 outbox_unavailable" {
			got503++
		}
	}
	res.check("nothing accepted while the outbox is unwritable", accepted == 0, "%d of %d posts answered 2xx", accepted, n)
	res.check("answered 503 outbox_unavailable", got503 == n, "%d of %d (answers: %s)", got503, n, summarize(codes))
	ready := readyStatus(ctx, e)
	res.check("/readyz reports it", ready == http.StatusServiceUnavailable, "GET /readyz answered %d", ready)
	_ = os.Remove(outbox)
	return os.Rename(outbox+".moved", outbox)
}

// outboxUncreatable starts a second service whose outbox cannot be
// created: it must refuse to start with a log line naming the outbox, or
// refuse every post 503 outbox_unavailable.
func outboxUncreatable(ctx context.Context, e *Env, res *FaultResult) error {
	blocker := filepath.Join(e.Dir, "blocker")
	if err := os.WriteFile(blocker, []byte("a file where a directory should be\n"), 0o600); err != nil {
		return err
	}
	cfg2 := *e.Cfg
	cfg2.Dir = filepath.Join(e.Dir, "svc2")
	cfg2.OutboxDir = filepath.Join(blocker, "outbox")
	if err := os.MkdirAll(cfg2.Dir, 0o700); err != nil {
		return err
	}
	if err := os.Link(e.Cfg.KeyFile(), cfg2.KeyFile()); err != nil {
		data, _ := os.ReadFile(e.Cfg.KeyFile())
		_ = os.WriteFile(cfg2.KeyFile(), data, 0o600)
	}
	svc2, err := NewService(e.Opt.Bin, &cfg2)
	if err != nil {
		return err
	}
	defer svc2.Close()
	if err := svc2.Start(ctx); err != nil {
		clear := strings.Contains(strings.ToLower(svc2.TailLog(20)), "outbox")
		res.check("startup on an uncreatable outbox refused clearly", clear, "service exited; log names the outbox: %v", clear)
		res.fact("startup log: %s", lastLine(svc2.TailLog(5)))
		return nil
	}
	c2 := NewClient(svc2.Addr)
	codes := map[string]int{}
	accepted := 0
	for i := 0; i < 3; i++ {
		r := e.NewRequest("outbox-unwritable/startup", ContactForm)
		r.Sender = visitor(r)
		a := e.Post(r, EncJSON, contactBase(r)...)
		noteAnswer(a)
		if _, _, err := c2.Send(ctx, a); err != nil {
			return err
		}
		codes[r.Note]++
		if r.Accepted() {
			accepted++
		}
	}
	res.check("started on an uncreatable outbox: nothing accepted", accepted == 0, "answers %v", codes)
	res.check("started on an uncreatable outbox: 503 outbox_unavailable", codes["503 outbox_unavailable"] == 3, "answers %v", codes)
	return nil
}
