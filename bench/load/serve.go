package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/server"
	"github.com/formguard/formguard/mailer"
	"github.com/formguard/formguard/mailer/outbox"
)

// serveOpts are the -serve child's settings, passed on its command line.
type serveOpts struct {
	kind       string // bare | memory | redis
	mix        mix
	redisAddr  string
	smtpAddr   string
	redisTO    time.Duration // the Redis store's per-call timeout; 0: its default
	spool      string
	logMode    string // file | discard | stderr | off
	logFile    string // the decision log's path, for logMode file
	cpuProfile string
	memProfile string
}

// childStats is the child's last line on stdout: counters over the
// measured window (from "mark" to the end).
type childStats struct {
	Served     uint64 `json:"served"`      // requests that reached the server's handler in the window
	Mallocs    uint64 `json:"mallocs"`     // heap objects allocated in the window
	AllocBytes uint64 `json:"alloc_bytes"` // heap bytes allocated in the window
	NumGC      uint32 `json:"num_gc"`
	Queued     uint64 `json:"queued"` // messages enqueued over the whole life (outbox mixes)
	QueueErrs  uint64 `json:"queue_errors"`
}

// serve runs one server until its stdin is closed (the parent closing the
// pipe, or dying). Protocol on stdout: "listening ADDR", then "marked"
// after each "mark" line read from stdin, then one JSON childStats line.
func serve(o serveOpts) error {
	var served, queued, queueErrs atomic.Uint64
	h, closeFn, err := buildHandler(o, &queued, &queueErrs)
	if err != nil {
		return err
	}
	defer closeFn()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		h.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           counted,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("listening %s\n", ln.Addr())

	var m0 runtime.MemStats
	var served0 uint64
	profiling := false
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() != "mark" {
			continue
		}
		if o.cpuProfile != "" && !profiling {
			f, err := os.Create(o.cpuProfile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			profiling = true
		}
		runtime.ReadMemStats(&m0)
		served0 = served.Load()
		fmt.Println("marked")
	}
	// stdin closed: stop.
	if profiling {
		pprof.StopCPUProfile()
	}
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	st := childStats{
		Served:     served.Load() - served0,
		Mallocs:    m1.Mallocs - m0.Mallocs,
		AllocBytes: m1.TotalAlloc - m0.TotalAlloc,
		NumGC:      m1.NumGC - m0.NumGC,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	st.Queued, st.QueueErrs = queued.Load(), queueErrs.Load()
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
		f.Close()
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}

func buildHandler(o serveOpts, queued, queueErrs *atomic.Uint64) (http.Handler, func(), error) {
	if o.kind == "bare" {
		// The ceiling: parse the same form, answer 200.
		mux := http.NewServeMux()
		mux.HandleFunc(formPath, func(w http.ResponseWriter, r *http.Request) {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"ok":true}`+"\n")
		})
		return mux, func() {}, nil
	}

	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	fail := func(err error) (http.Handler, func(), error) {
		closeAll()
		return nil, nil, err
	}
	var store ratelimit.Store
	switch o.kind {
	case "memory":
		// nil: the guard builds and owns its default memory store.
	case "redis":
		if newRedisStore == nil {
			return nil, nil, errors.New("this build has no Redis store (guard/ratelimit/redisstore)")
		}
		s, closeStore, err := newRedisStore(o.redisAddr, o.redisTO)
		if err != nil {
			return nil, nil, err
		}
		store = s
		closers = append(closers, closeStore)
	default:
		return nil, nil, fmt.Errorf("unknown server kind %q", o.kind)
	}
	log, closeLog, err := logger(o.logMode, o.logFile)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, closeLog)
	metrics := server.NewMetrics(server.MetricsConfig{})
	cfg := guardConfig(o.mix, store, log)
	cfg.ErrorHandler, cfg.SuccessHandler = metrics.GuardHandlers()
	g, err := guard.New(cfg)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { g.Close() })

	// Mixes without mail: an accepted post is answered as queued.
	deliver := func(context.Context, *post.Submission) error { return nil }
	if o.mix.deliver != "" {
		m, err := newMailer(o, log)
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { m.Close() })
		deliver = func(ctx context.Context, s *post.Submission) error {
			if err := m.Deliver(ctx, s); err != nil {
				queueErrs.Add(1)
				return err
			}
			queued.Add(1)
			return nil
		}
		if o.mix.deliver == deliverSMTP {
			ctx, cancel := context.WithCancel(context.Background())
			closers = append(closers, cancel)
			m.Start(ctx)
		}
	}
	srv, err := server.New(server.Config{
		Guard: g, Forms: []string{"contact"}, Deliver: deliver,
		Origins: []string{siteOrigin}, Metrics: metrics, Logger: log,
	})
	if err != nil {
		return fail(err)
	}
	return srv, closeAll, nil
}

// Mail set-ups of the mixes that deliver.
const (
	deliverRSA     = "rsa"     // RSA-2048 DKIM, directory outbox, no delivery
	deliverEd25519 = "ed25519" // Ed25519 DKIM, directory outbox, no delivery
	deliverSMTP    = "smtp"    // RSA-2048 DKIM, directory outbox, delivered to the SMTP sink
)

// e2eMaxPending is mailer.Config.MaxPending in the e2e mix.
const e2eMaxPending = 32

// newMailer is the service's mailer: composed and queued unsigned in a
// directory outbox (o.spool) by Deliver, DKIM-signed and delivered
// (deliverSMTP only) by the mailer's own workers to the loopback sink at
// o.smtpAddr.
func newMailer(o serveOpts, log *slog.Logger) (*mailer.Mailer, error) {
	alg := "rsa"
	if o.mix.deliver == deliverEd25519 {
		alg = "ed25519"
	}
	pemKey, err := mailer.GenerateKey(alg, 0)
	if err != nil {
		return nil, err
	}
	key, err := mailer.ParseKey(pemKey)
	if err != nil {
		return nil, err
	}
	q, err := outbox.NewDir(outbox.DirConfig{Path: o.spool})
	if err != nil {
		return nil, err
	}
	var tr mailer.Transport
	if o.mix.deliver == deliverSMTP {
		tr, err = mailer.NewSMTP(mailer.SMTPConfig{Addr: o.smtpAddr, TLS: mailer.TLSNone})
	} else {
		// Never used: no worker runs, so the queue only grows.
		tr, err = mailer.NewFile(mailer.FileConfig{Dir: o.spool + "-sent"})
	}
	if err != nil {
		q.Close()
		return nil, err
	}
	cfg := mailer.Config{
		Domain: siteDomain, SiteName: "Example", From: "no-reply@" + siteDomain, Bounce: "bounces@" + siteDomain,
		DKIM:      mailer.DKIM{Selector: "s1", Signer: key},
		Transport: tr, Outbox: q, Logger: log,
	}
	if o.mix.deliver == deliverSMTP {
		// Intake waits for delivery (the workers sign), so the mix
		// measures the pipeline, not how fast a backlog can grow.
		cfg.MaxPending = e2eMaxPending
	}
	m, err := mailer.New(cfg)
	if err != nil {
		tr.Close()
		q.Close()
		return nil, err
	}
	return m, nil
}

// lifted is a limit no run of this harness reaches.
var lifted = ratelimit.Limit{Count: 1_000_000_000, Period: time.Second}

func guardConfig(m mix, store ratelimit.Store, log *slog.Logger) guard.Config {
	f := guard.Form{To: []string{"support@" + siteDomain}}
	global := lifted
	switch m.limits {
	case "clients":
		// Per-IP and per-sender tiers keep their defaults.
		f.Limits.PerForm = lifted
	case "none":
		f.Limits = guard.Limits{PerIP: lifted, PerNetwork: lifted, PerSender: lifted, PerRecipient: lifted, PerForm: lifted}
	}
	return guard.Config{
		Domain:         siteDomain,
		Origins:        []string{siteOrigin},
		TrustedProxies: []string{"127.0.0.1"},
		Forms:          map[string]guard.Form{"contact": f},
		Store:          store,
		Global:         global,
		KeySecret:      []byte("formguard-load-harness-key-secret"),
		Logger:         log,
	}
}

// logger is the guard's decision log: a JSON line per decision, as the
// service writes it. "file" writes it to path, as a deployed service does
// (the guard's sampling decides how much a flood writes); "discard"
// formats every line and drops it, "stderr" writes it out, "off" sets the
// level above every decision.
func logger(mode, path string) (*slog.Logger, func(), error) {
	nop := func() {}
	switch mode {
	case "file":
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nop, err
		}
		return slog.New(slog.NewJSONHandler(f, nil)), func() { f.Close() }, nil
	case "stderr":
		return slog.New(slog.NewJSONHandler(os.Stderr, nil)), nop, nil
	case "off":
		return slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError + 1})), nop, nil
	case "discard":
		return slog.New(slog.NewJSONHandler(io.Discard, nil)), nop, nil
	}
	return nil, nop, fmt.Errorf("unknown -log mode %q (file, discard, stderr, off)", mode)
}

var errChild = errors.New("load: server child")
