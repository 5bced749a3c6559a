package server

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/formguard/formguard/guard"
	"github.com/formguard/formguard/guard/captcha"
	"github.com/formguard/formguard/guard/captcha/widget"
	"github.com/formguard/formguard/guard/ratelimit"
	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer"
	"github.com/formguard/formguard/mailer/outbox"
)

// Service defaults.
const (
	// GeneratedKeyAlg is the algorithm of a DKIM key made on first start
	// (RSA, which every verifier supports; Ed25519 is not yet universal).
	GeneratedKeyAlg = "rsa"
	// SentSubdir is where the file transport writes .eml files, under the
	// outbox directory.
	SentSubdir = "sent"
	// RedisPrefix starts formguard's Redis keys.
	RedisPrefix = "formguard"
	// StartupDoctorTimeout bounds the background DNS check at start-up.
	StartupDoctorTimeout = 30 * time.Second
	// RedisStartTimeout bounds the first contact with Redis.
	RedisStartTimeout = 5 * time.Second
)

// Options are Open's replaceable parts. The zero value is the production
// setting.
type Options struct {
	// Logger receives the service's logs. Zero value: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Zero value: time.Now.
	Now func() time.Time
	// SkipDoctor disables the background DNS check at start-up.
	SkipDoctor bool
	// DNSServer is the DNS server the start-up doctor asks (HOST:PORT).
	// Zero value: the system's resolvers.
	DNSServer string
}

// Service is the whole running formguard: guard, mailer, HTTP handler.
type Service struct {
	cfg     *config.Config
	opt     Options
	log     *slog.Logger
	handler *Server
	guard   *guard.Guard
	mailer  *mailer.Mailer
	store   ratelimit.Store
	replay  captcha.ReplayCache
	redis   *redis.Client
	metrics *Metrics
	signer  crypto.Signer
	closers []func() error // in the order opened; Close runs them backwards

	bg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Open builds every part of the service from cfg. It creates the data
// directory, generates the DKIM key when the config asks for it, connects
// to Redis when redis_url is set, and opens the outbox. Close releases it
// all; Run serves it.
func Open(ctx context.Context, cfg *config.Config, opt Options) (*Service, error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Service{cfg: cfg, opt: opt, log: opt.Logger}
	if err := s.open(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// open runs the steps of Open, each adding what it must close.
func (s *Service) open(ctx context.Context) error {
	master, err := s.keys()
	if err != nil {
		return err
	}
	s.metrics = s.newMetrics()
	queue, closeLimits, err := s.openLimits(ctx)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, closeLimits)
	closeMailer, err := s.openMailer(queue)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, closeMailer)
	caps, closeGuard, err := s.openGuard(master)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, closeGuard)
	return s.openHandler(caps)
}

// keys loads (or makes) the DKIM key and returns the master secret the
// service derives its other keys from: key_secret, else the DKIM key,
// which every instance sharing a Redis has, so all hash client keys alike.
func (s *Service) keys() (master []byte, err error) {
	if s.signer, err = s.dkimKey(); err != nil {
		return nil, err
	}
	if master = []byte(s.cfg.KeySecret.Reveal()); len(master) > 0 {
		return master, nil
	}
	if master, err = os.ReadFile(s.cfg.Mail.DKIM.KeyFile); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return master, nil
}

// openLimits opens the rate-limit store and the single-use token cache, in
// Redis with redis_url, else in memory. It returns the Redis outbox when
// mail.outbox is redis (nil otherwise).
func (s *Service) openLimits(ctx context.Context) (outbox.Queue, func() error, error) {
	if s.cfg.RedisURL != "" {
		rp, err := openRedis(ctx, s.cfg, s.opt, s.log)
		if err != nil {
			return nil, nil, err
		}
		s.redis, s.store, s.replay = rp.client, rp.store, rp.replay
		return rp.queue, func() error { return errors.Join(s.store.Close(), s.redis.Close()) }, nil
	}
	m, err := ratelimit.NewMemory(ratelimit.MemoryConfig{MaxKeys: s.cfg.Limits.MemoryKeys, Now: s.opt.Now})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	s.store = m
	s.replay = captcha.NewMemoryReplay(s.cfg.Limits.ReplayEntries, s.opt.Now)
	return nil, m.Close, nil
}

// openMailer opens the outbox (queue, or the directory when nil) and the
// transport and starts nothing yet. It owns queue from the call on.
func (s *Service) openMailer(queue outbox.Queue) (close func() error, err error) {
	var transport mailer.Transport
	defer func() {
		if err != nil && queue != nil {
			_ = queue.Close()
		}
		if err != nil && transport != nil {
			_ = transport.Close()
		}
	}()
	if queue == nil {
		dir, err := outbox.NewDir(outbox.DirConfig{Path: s.cfg.Mail.OutboxDir, Now: s.opt.Now})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		queue = dir
	}
	if transport, err = s.transport(); err != nil {
		return nil, err
	}
	templates := map[string]mailer.Template{}
	for _, name := range s.cfg.FormNames() {
		if f := s.cfg.Forms[name]; f.Template != nil {
			if templates[name], err = f.MailTemplate(); err != nil {
				return nil, fmt.Errorf("server: forms.%s.template: %w", name, err)
			}
		}
	}
	m := s.cfg.Mail
	s.mailer, err = mailer.New(mailer.Config{
		Templates: templates, Domain: s.cfg.Site.Domain, SiteName: s.cfg.Site.Name,
		From: m.From, Bounce: m.Bounce, DKIM: mailer.DKIM{Selector: m.DKIM.Selector, Signer: s.signer},
		Transport: transport, Outbox: queue, Workers: m.Workers,
		Retry: mailer.Retry{BaseDelay: m.Retry.BaseDelay, MaxDelay: m.Retry.MaxDelay, MaxAge: m.Retry.MaxAge},
		Now:   s.opt.Now, Logger: s.log,
		OnDelivery: func(ev mailer.DeliveryEvent) {
			s.metrics.Attempt(string(ev.Outcome), ev.Duration)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return s.mailer.Close, nil
}

// escalation is the guard's Escalate for the proof-of-work verifiers,
// which are built before the guard whose refusals raise their difficulty.
type escalation struct{ guard *guard.Guard }

func (e *escalation) factor(clientKey string) int64 {
	if e.guard == nil {
		return 1
	}
	return e.guard.Escalate(clientKey)
}

// openGuard builds every form's verifiers and the guard.
func (s *Service) openGuard(master []byte) (*config.Captchas, func() error, error) {
	esc := &escalation{}
	caps, err := s.cfg.Captchas(config.CaptchaDeps{
		Master: config.DeriveKey(master, "captcha"), Replay: s.replay, Now: s.opt.Now, Escalate: esc.factor,
	})
	if err != nil {
		return nil, nil, err
	}
	gc := s.cfg.GuardConfig(caps)
	gc.Store, gc.KeySecret, gc.Now, gc.Logger = s.store, config.DeriveKey(master, "client keys"), s.opt.Now, s.log
	gc.ErrorHandler, gc.SuccessHandler = s.metrics.GuardHandlers()
	if s.guard, err = guard.New(gc); err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	esc.guard = s.guard
	return caps, s.guard.Close, nil
}

// newMetrics counts into the parts built after it, once they exist.
func (s *Service) newMetrics() *Metrics {
	return NewMetrics(MetricsConfig{
		Outbox: func(ctx context.Context) (OutboxStats, error) {
			if s.mailer == nil {
				return OutboxStats{}, errors.New("server: mailer not started")
			}
			st, err := s.mailer.Stats(ctx)
			return OutboxStats{Depth: st.Depth, Dead: st.Dead, OldestAge: st.OldestAge}, err
		},
		StoreFallback: func() bool {
			d, ok := s.store.(interface{ Degraded() bool })
			return ok && d.Degraded()
		},
		GuardStats: func() guard.Stats {
			if s.guard == nil {
				return guard.Stats{}
			}
			return s.guard.Stats()
		},
		StoreStats: func() StoreStats { return storeStats(s.store, s.replay) },
	})
}

// openHandler builds the HTTP handler: the forms, their challenge and
// token endpoints, readiness checks and, with demo: true, the demo page.
func (s *Service) openHandler(caps *config.Captchas) (err error) {
	cfg := s.cfg
	challenges := map[string]http.Handler{}
	for name, p := range caps.PoW {
		challenges[name] = p.ChallengeHandler(name, s.guard.ChallengeKey)
	}
	var demo *Demo
	if cfg.Demo {
		if demo, err = DemoFor(cfg, caps.Tokens); err != nil {
			return err
		}
	}
	ready := map[string]func(context.Context) error{}
	if s.redis != nil {
		// With the fallback store and the outbox on disk, posts are still
		// decided and queued durably while Redis is down.
		degradable := cfg.Limits.RedisFallback && cfg.Mail.Outbox == config.OutboxKindDir
		ready["redis"] = func(ctx context.Context) error {
			err := s.redis.Ping(ctx).Err()
			if err != nil && degradable {
				return fmt.Errorf("%w: %w", ErrDegraded, err)
			}
			return err
		}
	}
	if cfg.Mail.Outbox == config.OutboxKindRedis {
		ready["outbox"] = func(ctx context.Context) error { _, err := s.mailer.Stats(ctx); return err }
	} else {
		ready["outbox"] = DirWritable(cfg.Mail.OutboxDir)
	}
	s.handler, err = New(Config{
		Guard: s.guard, Forms: cfg.FormNames(), Deliver: s.mailer.Deliver,
		Challenges: challenges, Tokens: tokenIssuers(caps.Tokens), Assets: widget.Handler(),
		Origins: cfg.Site.Origins, Ready: ready, Metrics: s.metrics,
		// /readyz and /metrics only on admin_listen when it is set.
		SeparateAdmin: cfg.AdminListen != "",
		Demo:          demo,
		Logger:        s.log,
	})
	return err
}

// dkimKey loads the DKIM key, first generating it when the config says so
// and it does not exist yet.
func (s *Service) dkimKey() (crypto.Signer, error) {
	path := s.cfg.Mail.DKIM.KeyFile
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && s.cfg.Mail.DKIM.Generate {
		pemBytes, err := mailer.GenerateKey(GeneratedKeyAlg, 0)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		// Written whole under a temporary name, then linked into place:
		// link fails if the key exists, so two instances starting together
		// never overwrite each other or read half a key.
		created, err := writeNew(path, pemBytes)
		if err != nil {
			return nil, fmt.Errorf("server: writing DKIM key: %w", err)
		}
		if !created {
			return s.loadKey(path)
		}
		signer, err := mailer.ParseKey(pemBytes)
		if err != nil {
			return nil, err
		}
		name, txt, err := mailer.DNSRecord(s.cfg.Mail.DKIM.Selector, s.cfg.Site.Domain, signer.Public())
		if err != nil {
			return nil, err
		}
		s.log.Info("generated DKIM key; publish its DNS record", "key_file", path, "alg", GeneratedKeyAlg, "dns_name", name, "dns_txt", txt)
		return signer, nil
	}
	return s.loadKey(path)
}

func (s *Service) loadKey(path string) (crypto.Signer, error) {
	signer, err := mailer.LoadKey(path)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return signer, nil
}

// writeNew creates path with data (mode 0600) unless it exists, in which
// case it reports created == false and leaves the file alone.
func writeNew(path string, data []byte) (created bool, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// transport builds the configured transport.
func (s *Service) transport() (mailer.Transport, error) {
	m := s.cfg.Mail
	switch m.Transport {
	case config.TransportSMTP:
		t, err := mailer.NewSMTP(mailer.SMTPConfig{
			Addr: m.SMTP.Addr, TLS: mailer.TLSMode(m.SMTP.TLS),
			Username: m.SMTP.Username, Password: m.SMTP.Password.Reveal(),
			HELO: m.SMTP.HELO, Timeout: m.SMTP.Timeout,
		})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		return t, nil
	default:
		t, err := mailer.NewFile(mailer.FileConfig{Dir: s.SentDir(), Now: s.opt.Now})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		return t, nil
	}
}

// SentDir is where the file transport writes .eml files.
func (s *Service) SentDir() string { return filepath.Join(s.cfg.Mail.OutboxDir, SentSubdir) }

// Handler is the service's HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

func tokenIssuers[T TokenIssuer](m map[string]T) map[string]TokenIssuer {
	out := make(map[string]TokenIssuer, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
