package guard

import (
	"errors"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
	"golang.org/x/text/unicode/norm"
)

// input is the parsed submission as validator/v10 sees it: struct tags
// name each field's rules, in order, and the Max* fields carry the form's
// limits so one cached struct description serves every form (the runes
// rule reads its limit from the named sibling field).
//
// The fields are unexported on purpose (WithPrivateFieldValidation):
// validator boxes every exported field into an interface to look for its
// Valuer interface, one allocation per field per request; unexported fields
// are read through reflect alone.
type input struct {
	name    string `validate:"utf8,singleline,runes=maxName,noaddress"`
	email   string `validate:"utf8,singleline,mailbox"`
	subject string `validate:"utf8,singleline,runes=maxSubject"`
	message string `validate:"utf8,multiline,runes=maxMessage"`
	url     string `validate:"utf8,singleline,runes=maxURL"`

	maxName, maxSubject, maxMessage, maxURL int
	emailRequired                           bool
}

const maxURLLength = 2048

// fieldValidator is shared by every Guard: a validator.Validate caches
// struct descriptions and is safe for concurrent use.
var fieldValidator = newValidator()

// newValidator builds the validator with formguard's rules:
//
//	utf8        valid UTF-8
//	singleline  SingleLine: no control, line break, separator or encoded word
//	multiline   safeText: line breaks and tabs, no other control
//	runes=F     at most the sibling int field F's value in runes
//	noaddress   noAddressMarks: no '@', '<' or '>', nor a look-alike of them
//	mailbox     one bare address (ParseAddress); empty only when the sibling
//	            emailRequired is false
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
		return maxRunes(fl.Field().String(), int(max.Int()))
	})
	must("noaddress", func(fl validator.FieldLevel) bool { return noAddressMarks(fl.Field().String()) })
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

// validate runs validator/v10 over in and maps the first failure (fields
// in declaration order, each field's rules in tag order) to a typed error
// naming the form's field.
func validate(in *input, names FieldNames) *Error {
	err := fieldValidator.Struct(in)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) || len(ves) == 0 {
		return ErrInternal.with(err)
	}
	fe := ves[0]
	var field string
	switch fe.StructField() {
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
	default:
		return ErrInternal.with(err)
	}
	switch fe.Tag() {
	case "utf8":
		return errNotUTF8(field)
	case "singleline":
		return errNotSingleLine(field)
	case "multiline":
		return ErrInvalidField.withq("field ", field, " failed multiline")
	case "runes":
		return ErrInvalidField.withq("field ", field, " is too long")
	case "noaddress":
		return ErrInvalidField.withq("field ", field, " contains @, < or > (or a look-alike)")
	case "mailbox":
		if fe.Value() == "" {
			return ErrInvalidEmail.withq("field ", field, " is required")
		}
		return ErrInvalidEmail.withq("field ", field, " is not a bare address")
	}
	return ErrInternal.with(err)
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

// noAddressMarks reports whether s, read in its NFKC form, has no '@', '<'
// or '>'. The visitor's name becomes the display name of From on contact
// mail ("Ada via Example"), where a name that reads like an address
// ("ceo@bank.example", "CEO <ceo@bank.example>") passes mail from the site
// off as someone else's. NFKC folds the look-alikes a mail client shows the
// same way, U+FF20 FULLWIDTH and U+FE6B SMALL COMMERCIAL AT, U+FF1C and
// U+FE64 for '<', so they are refused like the ASCII marks.
func noAddressMarks(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '@' || c == '<' || c == '>':
			return false
		case c >= 0x80:
			return !strings.ContainsAny(norm.NFKC.String(s[i:]), "@<>")
		}
	}
	return true
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
