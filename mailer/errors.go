package mailer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
)

// ErrBacklog is returned by Deliver when Config.MaxPending messages were
// waiting for delivery and none was taken before the context ended; the
// submission was not queued.
var ErrBacklog = errors.New("mailer: delivery backlog full")

// DeliveryError is a failed delivery attempt. Code is the SMTP reply code
// (RFC 5321 4.2) when the relay answered, 0 for network and local errors.
// Temporary failures (4yz replies, network errors, timeouts) are retried by
// the outbox; permanent ones (5yz) go to its dead-letter area.
type DeliveryError struct {
	Op        string // the SMTP step: dial, mail, rcpt, data, write
	Code      int    // SMTP reply code, 0 if none
	Msg       string // the relay's reply text (no secrets: relays never echo AUTH data)
	temporary bool
	Err       error
}

func (e *DeliveryError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("mailer: smtp %s: %d %s", e.Op, e.Code, e.Msg)
	}
	return fmt.Sprintf("mailer: smtp %s: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// Temporary reports whether a later attempt may succeed.
func (e *DeliveryError) Temporary() bool { return e.temporary }

// IsTemporary reports whether err is a delivery failure worth retrying: a
// 4yz reply, a network error or a timeout. Errors of unknown kind are not
// temporary.
func IsTemporary(err error) bool {
	var d *DeliveryError
	if errors.As(err, &d) {
		return d.temporary
	}
	var n net.Error
	return errors.As(err, &n) || errors.Is(err, context.DeadlineExceeded)
}

// IsPermanent reports whether err is a definitive refusal: a 5yz reply or a
// policy violation. Retrying it cannot help.
func IsPermanent(err error) bool {
	var d *DeliveryError
	if errors.As(err, &d) {
		return !d.temporary
	}
	return errors.Is(err, ErrPolicy)
}

// SMTPCode returns the SMTP reply code carried by err, or 0.
func SMTPCode(err error) int {
	var d *DeliveryError
	if errors.As(err, &d) {
		return d.Code
	}
	return 0
}

// classify wraps an error from an SMTP step. Replies are classified by
// their first digit (RFC 5321 4.2.1): 4 transient, 5 permanent. Anything
// without a reply (connection refused, reset, timeout, TLS failure) is
// transient: the relay may come back.
func classify(op string, err error) *DeliveryError {
	var d *DeliveryError
	if errors.As(err, &d) {
		return d
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return &DeliveryError{Op: op, Code: tp.Code, Msg: tp.Msg, temporary: tp.Code < 500, Err: err}
	}
	return &DeliveryError{Op: op, temporary: true, Err: err}
}
