package guard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Body kinds the guard accepts.
const (
	bodyURLEncoded = iota + 1
	bodyMultipart
	bodyJSON
)

const maxFieldNameLen = 64

// Parse errors; ParseForm wraps one of them.
var (
	errTooManyFields = errors.New("too many fields")
	errFieldName     = errors.New("field name invalid")
	errJSONShape     = errors.New("JSON body must be one object of strings (arrays of strings for recipients)")
	errBadUTF8       = errors.New("invalid UTF-8")
	errFilePart      = errors.New("file part in a form that does not accept files")
)

// mediaType classifies a Content-Type header value.
func mediaType(ct string) (kind int, params map[string]string, err error) {
	switch ct { // the common exact values, without parsing
	case "application/x-www-form-urlencoded":
		return bodyURLEncoded, nil, nil
	case "application/json":
		return bodyJSON, nil, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, nil, err
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		return bodyURLEncoded, params, nil
	case "multipart/form-data":
		if params["boundary"] == "" {
			return 0, nil, errors.New("multipart without boundary")
		}
		return bodyMultipart, params, nil
	case "application/json":
		return bodyJSON, params, nil
	}
	return 0, nil, fmt.Errorf("media type %q", mt)
}

// Values are a submission's raw fields: name to values in order received.
type Values map[string][]string

// ParseForm parses a request body of the given kind into fields. It is
// strict where net/http is lenient: field names and values must be valid
// UTF-8, at most maxFields distinct fields are read, JSON must be one flat
// object whose values are strings (or, for arrays, strings), JSON duplicate
// keys are kept as repeated values (so the caller can refuse them), and
// multipart file parts are refused unless allowFiles.
func ParseForm(kind int, params map[string]string, body []byte, maxFields int, allowFiles bool) (Values, error) {
	switch kind {
	case bodyURLEncoded:
		return parseURLEncoded(body, maxFields)
	case bodyMultipart:
		return parseMultipart(body, params["boundary"], maxFields, allowFiles)
	case bodyJSON:
		return parseJSON(body, maxFields)
	}
	return nil, errors.New("unknown body kind")
}

// valuesBuilder collects fields, taking single-value slices from one arena
// so a typical form costs one allocation for all its values.
type valuesBuilder struct {
	v     Values
	arena []string
}

func newValues() *valuesBuilder {
	return &valuesBuilder{v: make(Values, 8), arena: make([]string, 0, 8)}
}

func (b *valuesBuilder) add(name, value string, maxFields int) error {
	old, ok := b.v[name]
	if ok || len(b.arena) == cap(b.arena) {
		return b.v.add(name, value, maxFields)
	}
	if len(name) == 0 || len(name) > maxFieldNameLen || !utf8.ValidString(name) {
		return errFieldName
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("%w in field %q", errBadUTF8, name)
	}
	if len(b.v) >= maxFields {
		return errTooManyFields
	}
	_ = old
	n := len(b.arena)
	b.arena = append(b.arena, value)
	b.v[name] = b.arena[n : n+1 : n+1] // full slice expression: appends copy out
	return nil
}

func (v Values) add(name, value string, maxFields int) error {
	if len(name) == 0 || len(name) > maxFieldNameLen || !utf8.ValidString(name) {
		return errFieldName
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("%w in field %q", errBadUTF8, name)
	}
	old, ok := v[name]
	if !ok && len(v) >= maxFields {
		return errTooManyFields
	}
	v[name] = append(old, value)
	return nil
}

func parseURLEncoded(body []byte, maxFields int) (Values, error) {
	v := newValues()
	// The body is never written after it is read, so the fields can share
	// its memory instead of copying it.
	s := unsafe.String(unsafe.SliceData(body), len(body))
	for s != "" {
		var pair string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			pair, s = s, ""
		}
		if pair == "" {
			continue
		}
		if strings.IndexByte(pair, ';') >= 0 {
			return nil, errors.New("semicolon in urlencoded body")
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err := unescape(k)
		if err != nil {
			return nil, err
		}
		val, err = unescape(val)
		if err != nil {
			return nil, err
		}
		if err := v.add(k, val, maxFields); err != nil {
			return nil, err
		}
	}
	return v.v, nil
}

// unescape decodes application/x-www-form-urlencoded, skipping the work
// when there is nothing to decode.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}

func parseMultipart(body []byte, boundary string, maxFields int, allowFiles bool) (Values, error) {
	v := make(Values, 8)
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	parts := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return v, nil
		}
		if err != nil {
			return nil, err
		}
		parts++
		if parts > 4*maxFields {
			return nil, errTooManyFields
		}
		if p.FileName() != "" {
			if !allowFiles {
				return nil, errFilePart
			}
			continue // left to the wrapped handler, which re-reads the body
		}
		name := p.FormName()
		if name == "" {
			return nil, errFieldName
		}
		if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "" && !strings.EqualFold(cte, "8bit") && !strings.EqualFold(cte, "binary") && !strings.EqualFold(cte, "7bit") {
			return nil, fmt.Errorf("content-transfer-encoding %q", cte)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		if err := v.add(name, string(b), maxFields); err != nil {
			return nil, err
		}
	}
}

func parseJSON(body []byte, maxFields int) (Values, error) {
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; refuse it.
	if !utf8.Valid(body) {
		return nil, errBadUTF8
	}
	v := make(Values, 8)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errJSONShape
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errJSONShape
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case string:
			if err := v.add(key, t, maxFields); err != nil {
				return nil, err
			}
		case json.Delim:
			if t != '[' {
				return nil, errJSONShape
			}
			n := 0
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return nil, err
				}
				s, ok := tok.(string)
				if !ok {
					return nil, errJSONShape
				}
				if n++; n > 4*maxFields {
					return nil, errTooManyFields
				}
				if err := v.add(key, s, maxFields); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			if _, ok := v[key]; !ok {
				v[key] = []string{} // an empty array still names the field
			}
		default:
			return nil, errJSONShape
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return v, nil
}
