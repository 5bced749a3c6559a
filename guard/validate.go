package guard

import (
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// input is the parsed submission as validator/v10 sees it. The Max* fields
// carry the form's limits so one cached struct description serves every
// form (the runes tag reads its limit from the named sibling field).
//
// The fields are unexported on purpose: validator boxes every exported
// field into an interface to look for its Valuer interface, one allocation
// per field per request; unexported fields are read through reflect alone.
type input struct {
	name    string `validate:"utf8,singleline,runes=maxName"`
	email   string `validate:"utf8,singleline,mailbox"`
	subject string `validate:"utf8,singleline,runes=maxSubject"`
	message string `validate:"utf8,multiline,runes=maxMessage"`
	url     string `validate:"utf8,singleline,runes=maxURL"`

	maxName, maxSubject, maxMessage, maxURL int
	emailRequired                           bool
}

const maxURLLength = 2048

// newValidator builds the validator with formguard's custom rules.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithPrivateFieldValidation())
	must := func(tag string, fn validator.Func) {
		if err := v.RegisterValidation(tag, fn, true); err != nil {
			panic(err) // only on a programming error in this file
		}
	}
	must("utf8", func(fl validator.FieldLevel) bool { return utf8.ValidString(fl.Field().String()) })
	must("singleline", func(fl validator.FieldLevel) bool { return SingleLine(fl.Field().String()) })
	must("multiline", func(fl validator.FieldLevel) bool { return safeText(fl.Field().String()) })
	must("runes", func(fl validator.FieldLevel) bool {
		max := fl.Parent().FieldByName(fl.Param())
		if max.Kind() != reflect.Int {
			return false
		}
		return utf8.RuneCountInString(fl.Field().String()) <= int(max.Int())
	})
	must("mailbox", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		if s == "" {
			return !fl.Parent().FieldByName("emailRequired").Bool()
		}
		_, err := ParseAddress(s)
		return err == nil
	})
	return v
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

// validationError maps the first validator failure to a typed guard error.
func validationError(err error, names FieldNames) *Error {
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) || len(ves) == 0 {
		return ErrInternal.with(err)
	}
	fe := ves[0]
	field := fe.StructField()
	switch field {
	case "name":
		field = names.Name
	case "email":
		field = names.Email
	case "subject":
		field = names.Subject
	case "message":
		field = names.Message
	case "url":
		field = names.URL
	}
	switch fe.Tag() {
	case "singleline":
		return ErrHeaderInjection.withf("field %q contains a control character, line break or encoded word", field)
	case "mailbox":
		if fe.Value() == nil || fe.Value() == "" {
			return ErrInvalidEmail.withf("field %q is required", field)
		}
		return ErrInvalidEmail.withf("field %q is not a bare address", field)
	case "runes":
		return ErrInvalidField.withf("field %q is too long", field)
	case "utf8":
		return ErrMalformed.withf("field %q is not valid UTF-8", field)
	}
	return ErrInvalidField.withf("field %q failed %s", field, fe.Tag())
}
