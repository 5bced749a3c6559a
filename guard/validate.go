package guard

import (
	"strings"
	"unicode/utf8"
)

// input is the parsed submission's standard fields and the form's limits.
type input struct {
	name, email, subject, message, url      string
	maxName, maxSubject, maxMessage, maxURL int
	emailRequired                           bool
}

const maxURLLength = 2048

// validate applies the field rules, fields in the order name, email,
// subject, message, url and each field's rules in order, and reports the
// first failure:
//
//	name, subject, url: valid UTF-8, SingleLine, at most max runes
//	email:              valid UTF-8, SingleLine, one bare address (ParseAddress), required if emailRequired
//	message:            valid UTF-8, safeText (multi-line), at most max runes
//
// These are the rules (and the error for each) that validator/v10 applied
// through struct tags until the tags became the cost of a cheap request;
// TestValidateMatchesValidator keeps the two in step, rule by rule.
func validate(in *input, names FieldNames) *Error {
	if e := singleLineField(in.name, names.Name, in.maxName); e != nil {
		return e
	}
	if e := emailField(in.email, names.Email, in.emailRequired); e != nil {
		return e
	}
	if e := singleLineField(in.subject, names.Subject, in.maxSubject); e != nil {
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
	return singleLineField(in.url, names.URL, in.maxURL)
}

func singleLineField(v, field string, max int) *Error {
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

func emailField(v, field string, required bool) *Error {
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

func errNotUTF8(field string) *Error {
	return ErrMalformed.withq("field ", field, " is not valid UTF-8")
}

func errNotSingleLine(field string) *Error {
	return ErrHeaderInjection.withq("field ", field, " contains a control character, line break or encoded word")
}

// maxRunes reports whether s has at most max runes, without counting them
// when its length in bytes already says so.
func maxRunes(s string, max int) bool {
	return len(s) <= max || utf8.RuneCountInString(s) <= max
}

// SingleLine reports whether s is safe in a single-line mail header field:
// no C0 control (CR, LF, NUL, TAB, ...), no DEL, no C1 control (NEL), no
// Unicode line or paragraph separator (U+2028, U+2029), and no encoded form
// of them: no RFC 2047 encoded word ("=?charset?q?...?=", which a mail
// client would decode) and no percent-encoded CR, LF or NUL. formguard
// encodes headers itself, so a visitor never needs to send encoded words.
func SingleLine(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		if c == '%' && i+2 < len(s) && s[i+1] == '0' {
			switch s[i+2] {
			case '0', 'a', 'A', 'd', 'D':
				return false
			}
		}
		if c == '=' && i+1 < len(s) && s[i+1] == '?' && strings.Contains(s[i+2:], "?=") {
			return false
		}
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			if r == 0x2028 || r == 0x2029 || (r >= 0x80 && r <= 0x9f) || r == 0xfeff {
				return false
			}
			i += size - 1
		}
	}
	return true
}

// safeText reports whether s is acceptable multi-line text: line breaks and
// tabs are allowed, other C0 and C1 controls (NUL, ESC, ...) are not.
func safeText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			if r >= 0x80 && r <= 0x9f {
				return false
			}
			i += size - 1
		}
	}
	return true
}
