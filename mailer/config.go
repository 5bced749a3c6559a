package mailer

import (
	"io"
	"log/slog"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
)

const (
	// DefaultFromLocal is the local part of From when Config.From is empty.
	DefaultFromLocal = "no-reply"
	// MaxDisplayNameRunes caps the visitor's name in the From display name.
	MaxDisplayNameRunes = 64
)

// Config configures a Mailer. Every field documents its zero-value default.
type Config struct {
	// Domain is the site's mail domain (required). Header From is always
	// on it and it is the DKIM d= (RFC 6376 3.5, DMARC alignment).
	Domain string
	// SiteName appears in display names ("Ada via Example") and templates.
	// Zero value: Domain.
	SiteName string
	// From is the header From address; its domain must equal Domain.
	// Zero value: DefaultFromLocal@Domain.
	From string
	// Bounce is the envelope MAIL FROM (RFC 5321 4.1.1.2), where
	// non-delivery reports go; it must share Domain's organisational domain
	// (public suffix list) so SPF aligns. Zero value: From.
	Bounce string
	// DKIM signs every message. Zero value: refused by New unless
	// AllowUnsigned is set.
	DKIM DKIM
	// AllowUnsigned permits running without a DKIM key (development, or a
	// relay that signs). Zero value: a DKIM key is required.
	AllowUnsigned bool
	// Templates maps a form's name to its templates. Zero value: the
	// built-in DefaultContactTemplate / DefaultShareTemplate by kind.
	Templates map[string]Template
	// Transport delivers queued messages (required): NewSMTP or NewFile.
	// The Mailer owns it and closes it in Close.
	Transport Transport
	// Outbox is the durable queue (required): outbox.NewDir or
	// outbox.NewRedis. The Mailer owns it and closes it in Close.
	Outbox outbox.Queue
	// Workers is the number of delivery goroutines; each signs, then waits
	// on the relay and the outbox, so several per core keep the cores busy.
	// Zero value: outbox.DefaultConcurrency or 4×GOMAXPROCS, if larger.
	Workers int
	// MaxPending bounds the queued messages no worker has taken yet; past
	// it Deliver waits for a worker or its context (ErrBacklog), so a flood
	// is taken in at the pace of delivery. Retries do not count, so a relay
	// outage does not stop intake. Zero value: no bound.
	MaxPending int
	// Retry shapes retries of temporary failures. Zero value: the outbox
	// defaults (30 s base, 1 h cap, give up after 72 h).
	Retry Retry
	// Now is the clock (Date, DKIM t=, queue times). Zero value: time.Now.
	Now func() time.Time
	// Rand is the source of Message-ID randomness. Zero value:
	// crypto/rand.Reader.
	Rand io.Reader
	// Logger receives one line per queued submission and per delivery
	// outcome: IDs, counts and SMTP codes, never bodies, addresses or
	// secrets. Zero value: slog.Default().
	Logger *slog.Logger
	// OnDelivery observes every delivery attempt (metrics). Zero value:
	// nothing. It runs on a delivery goroutine; keep it fast.
	OnDelivery func(DeliveryEvent)
}

// Retry shapes the outbox worker's retries (see outbox.WorkerConfig).
type Retry struct {
	BaseDelay    time.Duration // zero: outbox.DefaultBaseDelay
	MaxDelay     time.Duration // zero: outbox.DefaultMaxDelay
	MaxAge       time.Duration // zero: outbox.DefaultMaxAge
	PollInterval time.Duration // zero: outbox.DefaultPollInterval
}

// DeliveryEvent reports one delivery attempt.
type DeliveryEvent struct {
	QueueID    string         // outbox message ID (also in the Message-ID)
	Submission string         // post.Submission.ID
	Outcome    outbox.Outcome // delivered, retry or dead
	Attempt    int            // 1 for the first attempt
	Recipients int            // envelope recipient count
	Code       int            // SMTP reply code, 0 if none
	Err        error          // nil when delivered
	Duration   time.Duration  // time spent sending
	Age        time.Duration  // time since the message was queued
}
