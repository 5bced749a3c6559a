package guard

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// taggedInput and the validator below are the field rules as they were
// written for validator/v10, kept as the reference that validate must
// match rule by rule: the same failing field, the same error code and the
// same cause text.
type taggedInput struct {
	name    string `validate:"utf8,singleline,runes=maxName"`
	email   string `validate:"utf8,singleline,mailbox"`
	subject string `validate:"utf8,singleline,runes=maxSubject"`
	message string `validate:"utf8,multiline,runes=maxMessage"`
	url     string `validate:"utf8,singleline,runes=maxURL"`

	maxName, maxSubject, maxMessage, maxURL int
	emailRequired                           bool
}

func newReferenceValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled(), validator.WithPrivateFieldValidation())
	must := func(tag string, fn validator.Func) {
		if err := v.RegisterValidation(tag, fn, true); err != nil {
			panic(err)
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

func referenceError(err error, names FieldNames) *Error {
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

var validateNames = FieldNames{Name: "name", Email: "e-mail", Subject: "subject", Message: "msg", URL: "url"}

// checkAgainstReference fails t when validate and the validator/v10
// reference disagree on in.
func checkAgainstReference(t *testing.T, v *validator.Validate, in input) {
	t.Helper()
	ref := taggedInput{name: in.name, email: in.email, subject: in.subject, message: in.message, url: in.url,
		maxName: in.maxName, maxSubject: in.maxSubject, maxMessage: in.maxMessage, maxURL: in.maxURL, emailRequired: in.emailRequired}
	var want *Error
	if err := v.Struct(&ref); err != nil {
		want = referenceError(err, validateNames)
	}
	got := validate(&in, validateNames)
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Fatalf("%+v: validate = %v, validator/v10 = %v", in, got, want)
	case got.Code != want.Code || got.Status != want.Status || got.Message != want.Message || got.Cause.Error() != want.Cause.Error():
		t.Fatalf("%+v: validate = %v, validator/v10 = %v", in, got, want)
	}
}

func TestValidateMatchesValidator(t *testing.T) {
	v := newReferenceValidator()
	values := []string{"", "Ada", "ada@example.org", "not-an-address", "A <a@b.test>", "a\r\nBcc: x", "=?utf-8?q?x?=",
		"a%0d%0ab", "\xff", "é", strings.Repeat("é", 6), strings.Repeat("x", 6), "line\nbreak", "tab\there", "nul\x00",
		"\u0085", "\u2028", "https://example.test/p", " ", "a@bücher.example"}
	for _, name := range values {
		for _, email := range values {
			for _, msg := range values {
				for _, req := range []bool{false, true} {
					in := input{name: name, email: email, subject: msg, message: msg, url: name,
						maxName: 5, maxSubject: 5, maxMessage: 5, maxURL: 5, emailRequired: req}
					checkAgainstReference(t, v, in)
				}
			}
		}
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("Ada", "ada@example.org", "Hello", "Hi\r\nthere", "https://example.test/", 3, true)
	f.Add("a\r\nb", "x", "=?a?b?=", "\x00", "\xff", 0, false)
	v := newReferenceValidator()
	f.Fuzz(func(t *testing.T, name, email, subject, message, url string, max int, req bool) {
		max = max % 64
		in := input{name: name, email: email, subject: subject, message: message, url: url,
			maxName: max, maxSubject: max + 1, maxMessage: max + 2, maxURL: max + 3, emailRequired: req}
		checkAgainstReference(t, v, in)
	})
}
