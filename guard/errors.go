package guard

import (
	"errors"
	"fmt"
	"github.com/formguard/formguard/post"
	"net/http"
	"strconv"
	"time"
)

// Error is the guard's one error type for rejected requests: an HTTP status,
// a stable machine-readable Code, a fixed human Message safe to show to any
// client, and the wrapped Cause for logs only. The Cause's text never
// reaches a client.
type Error struct {
	Status     int
	Code       string
	Message    string
	Cause      error
	RetryAfter time.Duration // set on rate_limited answers

	// decoy is what a honeypot hit is answered with (see Guard.decoy), so
	// WriteError gives it the very answer an accept of the same post gets.
	decoy *post.Submission
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "guard: " + e.Code + ": " + e.Cause.Error()
	}
	return "guard: " + e.Code
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is matches any *Error with the same Code, so errors.Is(err, guard.ErrOrigin)
// works for errors that carry a cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// with returns a copy of e carrying cause.
func (e *Error) with(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

func (e *Error) withf(format string, a ...any) *Error {
	return e.with(fmt.Errorf(format, a...))
}

// detail is a rejection's cause for the log: pre + arg + post, with arg
// Go-quoted (as fmt's %q) when quote is set. The text is built only when
// read, and a detailedError carries it in the same allocation as the
// Error, so a rejection on the request path costs one allocation.
type detail struct {
	pre, arg, post string
	quote          bool
}

func (d *detail) Error() string {
	if !d.quote {
		return d.pre + d.arg + d.post
	}
	var buf [160]byte // most causes fit: one allocation, the string
	b := append(buf[:0], d.pre...)
	b = strconv.AppendQuote(b, d.arg)
	b = append(b, d.post...)
	return string(b)
}

type detailedError struct {
	e Error
	d detail
}

// withq returns a copy of e whose cause reads pre + strconv.Quote(arg) +
// post, the same text as withf(pre+"%q"+post, arg).
func (e *Error) withq(pre, arg, post string) *Error {
	x := &detailedError{e: *e, d: detail{pre: pre, arg: arg, post: post, quote: true}}
	x.e.Cause = &x.d
	return &x.e
}

// withText returns a copy of e whose cause reads pre + arg + post.
func (e *Error) withText(pre, arg, post string) *Error {
	x := &detailedError{e: *e, d: detail{pre: pre, arg: arg, post: post}}
	x.e.Cause = &x.d
	return &x.e
}

func newErr(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Sentinel errors, one per rejection reason. Compare with errors.Is.
var (
	ErrUnknownForm        = newErr(http.StatusNotFound, "unknown_form", "No such form.")
	ErrMethod             = newErr(http.StatusMethodNotAllowed, "method_not_allowed", "Forms must be submitted with POST.")
	ErrTooLarge           = newErr(http.StatusRequestEntityTooLarge, "body_too_large", "The submission is too large.")
	ErrContentType        = newErr(http.StatusUnsupportedMediaType, "unsupported_content_type", "Submit as a form (urlencoded or multipart) or JSON.")
	ErrOrigin             = newErr(http.StatusForbidden, "bad_origin", "Submissions are only accepted from this site's own pages.")
	ErrMalformed          = newErr(http.StatusBadRequest, "malformed_body", "The submission could not be read.")
	ErrFilesNotAllowed    = newErr(http.StatusBadRequest, "files_not_allowed", "This form does not accept file uploads.")
	ErrDuplicateField     = newErr(http.StatusBadRequest, "duplicate_field", "A field was sent more than once.")
	ErrForbiddenField     = newErr(http.StatusBadRequest, "forbidden_field", "The submission contains a field that is not allowed.")
	ErrUnknownField       = newErr(http.StatusBadRequest, "unknown_field", "The submission contains an unknown field.")
	ErrInvalidField       = newErr(http.StatusUnprocessableEntity, "invalid_field", "A field is missing or invalid.")
	ErrHeaderInjection    = newErr(http.StatusBadRequest, "header_injection", "A single-line field contains line breaks or control characters.")
	ErrInvalidEmail       = newErr(http.StatusUnprocessableEntity, "invalid_email", "The email address is not valid.")
	ErrNoRecipient        = newErr(http.StatusUnprocessableEntity, "no_recipient", "Choose a recipient.")
	ErrInvalidRecipient   = newErr(http.StatusUnprocessableEntity, "invalid_recipient", "A recipient address is not valid or not allowed.")
	ErrTooManyRecipients  = newErr(http.StatusUnprocessableEntity, "too_many_recipients", "Too many recipients.")
	ErrTooManyLinks       = newErr(http.StatusUnprocessableEntity, "too_many_links", "The message contains too many links.")
	ErrOffsiteURL         = newErr(http.StatusUnprocessableEntity, "offsite_url", "Only pages of this site can be shared.")
	ErrOffsiteRedirect    = newErr(http.StatusBadRequest, "offsite_redirect", "Redirects may only point to this site.")
	ErrCaptchaMissing     = newErr(http.StatusBadRequest, "captcha_missing", "Please complete the CAPTCHA.")
	ErrCaptchaInvalid     = newErr(http.StatusForbidden, "captcha_invalid", "The CAPTCHA answer was not accepted.")
	ErrCaptchaUnavailable = newErr(http.StatusServiceUnavailable, "captcha_unavailable", "The CAPTCHA could not be verified; try again later.")
	ErrTokenInvalid       = newErr(http.StatusForbidden, "token_invalid", "The form has expired or was already submitted; reload the page.")
	ErrTooFast            = newErr(http.StatusForbidden, "too_fast", "The form was submitted too quickly.")
	ErrRateLimited        = newErr(http.StatusTooManyRequests, "rate_limited", "Too many submissions; try again later.")
	ErrBanned             = newErr(http.StatusTooManyRequests, "banned", "Too many rejected submissions; try again later.")
	ErrLimiterUnavailable = newErr(http.StatusServiceUnavailable, "limiter_unavailable", "The service is busy; try again later.")
	ErrHoneypot           = newErr(http.StatusOK, "honeypot", "Thank you.")
	ErrInternal           = newErr(http.StatusInternalServerError, "internal", "Something went wrong; try again later.")
)

// AsError returns err as an *Error, mapping any other error to ErrInternal.
func AsError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e // the common case: no reflection, no allocation
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal.with(err)
}
