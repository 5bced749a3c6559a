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
	outbox := filepath.Join(e.Cfg.Dir, "outbox")
	// 1. Working, then broken.
	var warm Batch
	for i := 0; i < 3; i++ {
		warm = append(warm, e.LegitContact("outbox-unwritable/before", Enc(i%3)))
	}
	if err := e.Send(ctx, []Batch{warm}); err != nil {
		return nil, err
	}
	if err := os.Rename(outbox, outbox+".moved"); err != nil {
		return nil, fmt.Errorf("outbox-unwritable: %w", err)
	}
	if err := os.WriteFile(outbox, []byte("not a directory\n"), 0o600); err != nil {
		return nil, err
	}
	n := scale(opt, 10, 30)
	var broken Batch
	codes := make([]string, n)
	for i := 0; i < n; i++ {
		i := i
		a := e.LegitContact("outbox-unwritable", Enc(i%3))
		a.Req.Legit = false // cannot be delivered; must be refused instead
		a.Check = func(status int, _ http.Header, body []byte) (string, string) {
			codes[i] = fmt.Sprintf("%d %s", status, problemCode(body))
			return "", ""
		}
		broken = append(broken, a)
	}
	if err := e.Send(ctx, []Batch{broken}); err != nil {
		return nil, err
	}
	got503 := 0
	accepted := 0
	for i, a := range broken {
		if a.Req.Accepted() {
			accepted++
		}
		if codes[i] == "503 outbox_unavailable" {
			got503++
		}
	}
	res.check("nothing accepted while the outbox is unwritable", accepted == 0, "%d of %d posts answered 2xx", accepted, n)
	res.check("answered 503 outbox_unavailable", got503 == n, "%d of %d (answers: %s)", got503, n, summarize(codes))
	ready := readyStatus(ctx, e)
	res.check("/readyz reports it", ready == http.StatusServiceUnavailable, "GET /readyz answered %d", ready)
	// 2. Repaired: accepted and delivered again.
	_ = os.Remove(outbox)
	if err := os.Rename(outbox+".moved", outbox); err != nil {
		return nil, err
	}
	var after Batch
	for i := 0; i < 3; i++ {
		after = append(after, e.LegitContact("outbox-unwritable/after", Enc(i%3)))
	}
	if err := e.Send(ctx, []Batch{after}); err != nil {
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

	// 3. Started on an outbox that cannot be created.
	e.Svc.Stop()
	blocker := filepath.Join(e.Dir, "blocker")
	if err := os.WriteFile(blocker, []byte("a file where a directory should be\n"), 0o600); err != nil {
		return nil, err
	}
	cfg2 := *e.Cfg
	cfg2.Dir = filepath.Join(e.Dir, "svc2")
	cfg2.OutboxDir = filepath.Join(blocker, "outbox")
	if err := os.MkdirAll(cfg2.Dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Link(e.Cfg.KeyFile(), cfg2.KeyFile()); err != nil {
		data, _ := os.ReadFile(e.Cfg.KeyFile())
		_ = os.WriteFile(cfg2.KeyFile(), data, 0o600)
	}
	svc2, err := NewService(e.Opt.Bin, &cfg2)
	if err != nil {
		return nil, err
	}
	defer svc2.Close()
	startErr := svc2.Start(ctx)
	if startErr != nil {
		clear := strings.Contains(strings.ToLower(svc2.TailLog(20)), "outbox")
		res.check("startup on an uncreatable outbox refused clearly", clear, "service exited; log names the outbox: %v", clear)
		res.fact("startup log: %s", lastLine(svc2.TailLog(5)))
		return res, nil
	}
	c2 := NewClient(svc2.Addr)
	codes2 := map[string]int{}
	acc2 := 0
	for i := 0; i < 3; i++ {
		r := e.NewRequest("outbox-unwritable/startup", ContactForm)
		r.Sender = visitor(r)
		a := e.Post(r, EncJSON, contactBase(r)...)
		var code string
		a.Check = func(status int, _ http.Header, body []byte) (string, string) {
			code = fmt.Sprintf("%d %s", status, problemCode(body))
			return "", ""
		}
		if _, _, err := c2.Send(ctx, a); err != nil {
			return nil, err
		}
		codes2[code]++
		if r.Accepted() {
			acc2++
		}
	}
	res.check("started on an uncreatable outbox: nothing accepted", acc2 == 0, "answers %v", codes2)
	res.check("started on an uncreatable outbox: 503 outbox_unavailable", codes2["503 outbox_unavailable"] == 3, "answers %v", codes2)
	return res, nil
}
