package guard

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// referenceValidate applies the field rules, fields in the order name, email,
// subject, message, url and each field's rules in order, and reports the
// first failure:
//
//	name, subject, url: valid UTF-8, SingleLine, at most max runes
//	name:               no '@', '<' or '>' in its NFKC form
//	email:              valid UTF-8, SingleLine, one bare address (ParseAddress), required if emailRequired
//	message:            valid UTF-8, safeText (multi-line), at most max runes
//
// It is written by hand, independently of the struct tags, so that
// TestValidateMatchesReference catches a tag, rule or error mapping that
// drifts from the documented rules.
func referenceValidate(in *input, names FieldNames) *Error {
	if e := refSingleLine(in.name, names.Name, in.maxName); e != nil {
		return e
	}
	if strings.ContainsAny(norm.NFKC.String(in.name), "@<>") {
		return ErrInvalidField.withq("field ", names.Name, " contains @, < or > (or a look-alike)")
	}
	if e := refEmail(in.email, names.Email, in.emailRequired); e != nil {
		return e
	}
	if e := refSingleLine(in.subject, names.Subject, in.maxSubject); e != nil {
		return e
	}
	if !utf8.ValidString(in.message) {
		return errNotUTF8(names.Message)
	}
	if !safeText(in.message) {
		return ErrInvalidField.withq("field ", names.Message, " failed multiline")
	}
	if !maxRunes(in.message, in.maxMessage) {
		return ErrInvalidField.withq("field ", names.Message, " is too long")
	}
	return refSingleLine(in.url, names.URL, in.maxURL)
}

func refSingleLine(v, field string, max int) *Error {
	if !utf8.ValidString(v) {
		return errNotUTF8(field)
	}
	if !SingleLine(v) {
		return errNotSingleLine(field)
	}
	if !maxRunes(v, max) {
		return ErrInvalidField.withq("field ", field, " is too long")
	}
	return nil
}

func refEmail(v, field string, required bool) *Error {
	if !utf8.ValidString(v) {
		return errNotUTF8(field)
	}
	if !SingleLine(v) {
		return errNotSingleLine(field)
	}
	if v == "" {
		if required {
			return ErrInvalidEmail.withq("field ", field, " is required")
		}
		return nil
	}
	if _, err := ParseAddress(v); err != nil {
		return ErrInvalidEmail.withq("field ", field, " is not a bare address")
	}
	return nil
}

var validateNames = FieldNames{Name: "name", Email: "e-mail", Subject: "subject", Message: "msg", URL: "url"}

// checkAgainstReference fails t when validate (validator/v10 with the
// struct tags) and the hand-written reference disagree on in.
func checkAgainstReference(t *testing.T, in input) {
	t.Helper()
	ref := in
	want := referenceValidate(&ref, validateNames)
	got := validate(&in, validateNames)
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Fatalf("%+v: validate = %v, reference = %v", in, got, want)
	case got.Code != want.Code || got.Status != want.Status || got.Message != want.Message || got.Cause.Error() != want.Cause.Error():
		t.Fatalf("%+v: validate = %v, reference = %v", in, got, want)
	}
}

func TestValidateMatchesReference(t *testing.T) {
	values := []string{"", "Ada", "ada@example.org", "not-an-address", "A <a@b.test>", "a\r\nBcc: x", "=?utf-8?q?x?=",
		"a%0d%0ab", "\xff", "é", strings.Repeat("é", 6), strings.Repeat("x", 6), "line\nbreak", "tab\there", "nul\x00",
		"\u0085", "\u2028", "https://example.test/p", " ", "a@bücher.example", "Ada\uff20x", "\ufe6b", "\uff1cb\uff1e", "a<b", "é>"}
	for _, name := range values {
		for _, email := range values {
			for _, msg := range values {
				for _, req := range []bool{false, true} {
					in := input{name: name, email: email, subject: msg, message: msg, url: name,
						maxName: 5, maxSubject: 5, maxMessage: 5, maxURL: 5, emailRequired: req}
					checkAgainstReference(t, in)
				}
			}
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("Ada", "ada@example.org", "Hello", "Hi\r\nthere", "https://example.test/", 3, true)
	f.Add("a\r\nb", "x", "=?a?b?=", "\x00", "\xff", 0, false)
	f.Fuzz(func(t *testing.T, name, email, subject, message, url string, max int, req bool) {
		max = max % 64
		in := input{name: name, email: email, subject: subject, message: message, url: url,
			maxName: max, maxSubject: max + 1, maxMessage: max + 2, maxURL: max + 3, emailRequired: req}
		checkAgainstReference(t, in)
	})
}
