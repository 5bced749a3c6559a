package outbox

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"time"
)

// Message is one queued mail: an SMTP envelope and the raw RFC 5322
// message. The queue never looks inside Raw or Seal.
type Message struct {
	// ID is the stable queue identifier, assigned by Enqueue when empty.
	// It is safe as a file name: [a-z0-9] only.
	ID string `json:"id"`
	// Ref ties the message to what produced it (the submission ID), for logs.
	Ref string `json:"ref,omitempty"`
	// From is the envelope sender (RFC 5321 MAIL FROM).
	From string `json:"from"`
	// To are the envelope recipients (RFC 5321 RCPT TO).
	To []string `json:"to"`
	// Raw is the complete message, CRLF line endings.
	Raw []byte `json:"-"`
	// Enqueued is when the message was first queued.
	Enqueued time.Time `json:"enqueued"`
	// Attempts counts delivery attempts so far.
	Attempts int `json:"attempts,omitempty"`
	// NextAttempt is when the message is next due. Zero: now.
	NextAttempt time.Time `json:"next,omitzero"`
	// LastError is the reason of the last failed attempt.
	LastError string `json:"error,omitempty"`
	// Seal is an opaque authenticator set by the producer and stored with
	// the message (the mailer's MAC over the envelope and Raw, which lets
	// its workers tell the messages it queued from bytes written by anyone
	// else). Zero value: none.
	Seal string `json:"seal,omitempty"`

	// handle is the backend's reference to this copy (a stream entry ID).
	handle string
}

// Stats describes a queue at one instant, for metrics and health checks.
type Stats struct {
	Depth     int           // messages waiting or in flight, excluding dead letters
	InFlight  int           // claimed and not yet acked, retried or dead-lettered
	Dead      int           // messages in the dead-letter area
	Oldest    time.Time     // Enqueued of the oldest live message (zero if none)
	OldestAge time.Duration // now - Oldest (zero if none)
}

// Queue is a durable outbox. Implementations are safe for concurrent use.
//
// Claim hands a message to exactly one caller until it is acked, retried or
// dead-lettered (for Redis: until another instance reclaims it after the
// claim lease expires, see RedisConfig.ClaimIdle).
type Queue interface {
	// Enqueue makes msgs durable, all of them or (on error) none of them,
	// and returns only then.
	Enqueue(ctx context.Context, msgs ...*Message) error
	// Claim returns up to max messages due at now, oldest first.
	Claim(ctx context.Context, now time.Time, max int) ([]*Message, error)
	// Ack records a successful delivery and removes the message for good:
	// it is never claimed again by this queue. The record may reach disk
	// after Ack returns (Dir: with the next group commit round), so a
	// crash just after a delivery may still resend it after a restart.
	Ack(ctx context.Context, m *Message) error
	// Retry records a failed attempt (m.Attempts, m.LastError are saved)
	// and makes the message due again at next.
	Retry(ctx context.Context, m *Message, next time.Time) error
	// Dead moves the message to the dead-letter area with reason.
	Dead(ctx context.Context, m *Message, reason string) error
	// Stats reports depth and age at now.
	Stats(ctx context.Context, now time.Time) (Stats, error)
	// Close releases the queue's resources (not the messages).
	Close() error
}

// Errors shared by the queue implementations.
var (
	// ErrClosed is returned by a closed queue.
	ErrClosed = errors.New("outbox: queue is closed")
	// ErrInvalidMessage is returned by Enqueue for a message without an
	// envelope sender, recipients or body, or with a malformed ID.
	ErrInvalidMessage = errors.New("outbox: invalid message")
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random 26-character lower-case base32 identifier.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

// validID reports whether id is 1..64 characters of [a-z0-9_-].
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// prepare validates m and fills ID and Enqueued.
func prepare(m *Message, now time.Time) error {
	switch {
	case m == nil:
		return errors.Join(ErrInvalidMessage, errors.New("outbox: nil message"))
	case m.From == "":
		return errors.Join(ErrInvalidMessage, errors.New("outbox: empty envelope sender"))
	case len(m.To) == 0:
		return errors.Join(ErrInvalidMessage, errors.New("outbox: no envelope recipients"))
	case len(m.Raw) == 0:
		return errors.Join(ErrInvalidMessage, errors.New("outbox: empty message"))
	}
	if m.ID == "" {
		m.ID = newID()
	} else if !validID(m.ID) {
		return errors.Join(ErrInvalidMessage, errors.New("outbox: malformed message ID"))
	}
	if m.Enqueued.IsZero() {
		m.Enqueued = now
	}
	return nil
}
