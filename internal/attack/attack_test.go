package attack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The formguard binary is built once, on first use, for every test here.
var (
	buildOnce  sync.Once
	serviceBin string
	buildErr   error
	binDir     string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func options(t *testing.T) Options {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the real service; skipped with -short")
	}
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "formguard-attack-bin-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		serviceBin, buildErr = BuildService(ctx, binDir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return Options{Seed: 1, Short: true, Bin: serviceBin, Dir: t.TempDir(), Log: testWriter{t}}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestAttackShort runs every attack class against the real service and
// insists on a clean audit with every legitimate submission delivered.
func TestAttackShort(t *testing.T) {
	ctx := context.Background()
	e, err := Setup(ctx, options(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rep, err := e.Attack(ctx, Classes())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Markdown())
	if !rep.OK() {
		t.Errorf("%d violations; service log tail:\n%s", len(rep.Violations), e.Svc.TailLog(20))
	}
	legit := 0
	for _, r := range e.Requests() {
		if r.Legit {
			legit++
		}
	}
	var lc ClassResult
	for _, c := range rep.Classes {
		if c.Class == "legit" {
			lc = c
		}
	}
	// The audit reports lost mail as violations; these make sure the run
	// really exercised the service rather than passing empty.
	if lc.Requests == 0 || lc.Accepted != lc.Requests || lc.Delivered < lc.Requests || rep.Total.Lost != 0 {
		t.Errorf("legit class %+v, total lost %d: every legitimate submission must be delivered", lc, rep.Total.Lost)
	}
	if len(rep.Classes) < len(Classes()) || rep.Total.Requests < 400 {
		t.Errorf("only %d classes and %d requests ran", len(rep.Classes), rep.Total.Requests)
	}
	if legit < 20 {
		t.Errorf("only %d legitimate requests", legit)
	}
}

func runFault(t *testing.T, name string, opt Options) *FaultResult {
	t.Helper()
	res, err := RunFault(context.Background(), name, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Markdown())
	if !res.OK() {
		t.Errorf("fault %s failed", name)
	}
	if len(res.Checks) == 0 || res.Audit == nil || res.Audit.Total.Requests == 0 {
		t.Errorf("fault %s ran no checks or sent nothing", name)
	}
	return res
}

func TestFaultSMTP451(t *testing.T) { runFault(t, FaultSMTP451, options(t)) }

func TestFaultSIGKILL(t *testing.T) {
	res := runFault(t, FaultSIGKILL, options(t))
	if res.Audit.Total.Accepted == 0 || res.Audit.Total.Delivered < res.Audit.Total.Accepted {
		t.Errorf("totals %+v", res.Audit.Total)
	}
}

func TestFaultOutboxUnwritable(t *testing.T) { runFault(t, FaultOutboxUnwritable, options(t)) }

func TestFaultRedisKilled(t *testing.T) {
	opt := options(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (make deps installs it)")
	}
	res, err := RunFault(context.Background(), FaultRedisKilled, opt)
	if err != nil {
		// The only accepted reason not to run: the service build has no
		// Redis store yet, and says so.
		if log, _ := os.ReadFile(filepath.Join(opt.Dir, "svc", "service.log")); strings.Contains(string(log), "not available in this build") {
			t.Skipf("the service does not support redis_url yet: %v", err)
		}
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Markdown())
	if !res.OK() {
		t.Error("redis-killed failed")
	}
}

func TestSoakShort(t *testing.T) {
	opt := options(t)
	res, err := Soak(context.Background(), 12*time.Second, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", res.Markdown())
	if !res.OK() {
		t.Error("soak failed")
	}
	if len(res.Samples) < 6 || res.Requests < 100 {
		t.Errorf("%d samples, %d requests: the soak did not run", len(res.Samples), res.Requests)
	}
}
