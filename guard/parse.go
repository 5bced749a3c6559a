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
	"sync"
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
	f := getFieldSet()
	defer f.release()
	if err := f.parse(kind, params, body, maxFields, allowFiles); err != nil {
		return nil, err
	}
	v := make(Values, len(f.names))
	for i, name := range f.names {
		v[name] = append([]string{}, f.vals[i]...)
	}
	return v, nil
}

// fieldSet is a parsed body as the guard reads it: the distinct field names
// in the order first received, each with its values. It replaces a Values
// map on the request path: a form has a handful of fields, so a linear
// lookup is cheaper than hashing, and the set is pooled, so parsing a
// typical form allocates nothing but the decoded text (see unescape).
type fieldSet struct {
	names []string
	vals  [][]string
	arena []string // single values: vals[i] = arena[n:n+1:n+1]
	// dec holds the unescaped bytes of urlencoded fields; strings point
	// into it and live on in the Submission, so it is never reused.
	dec []byte
}

var fieldSets = sync.Pool{New: func() any {
	return &fieldSet{names: make([]string, 0, 8), vals: make([][]string, 0, 8), arena: make([]string, 0, 8)}
}}

func getFieldSet() *fieldSet { return fieldSets.Get().(*fieldSet) }

// release clears every reference to the request's text (so the pool never
// keeps a body alive) and returns the set to the pool.
func (f *fieldSet) release() {
	if cap(f.names) > 4*DefaultMaxFields || cap(f.arena) > 4*DefaultMaxFields {
		return // an attacker-sized set: let it go
	}
	clear(f.names[:cap(f.names)])
	clear(f.vals[:cap(f.vals)])
	clear(f.arena[:cap(f.arena)])
	f.names, f.vals, f.arena, f.dec = f.names[:0], f.vals[:0], f.arena[:0], nil
	fieldSets.Put(f)
}

func (f *fieldSet) parse(kind int, params map[string]string, body []byte, maxFields int, allowFiles bool) error {
	switch kind {
	case bodyURLEncoded:
		return f.parseURLEncoded(body, maxFields)
	case bodyMultipart:
		return f.parseMultipart(body, params["boundary"], maxFields, allowFiles)
	case bodyJSON:
		return f.parseJSON(body, maxFields)
	}
	return errors.New("unknown body kind")
}

func (f *fieldSet) index(name string) int {
	for i, n := range f.names {
		if n == name {
			return i
		}
	}
	return -1
}

// get returns the values of a field, nil when it was not sent.
func (f *fieldSet) get(name string) []string {
	if i := f.index(name); i >= 0 {
		return f.vals[i]
	}
	return nil
}

// first returns the first value of a field, "" when it was not sent.
func (f *fieldSet) first(name string) string { return first(f.get(name)) }

func (f *fieldSet) add(name, value string, maxFields int) error {
	if len(name) == 0 || len(name) > maxFieldNameLen || !utf8.ValidString(name) {
		return errFieldName
	}
	if !utf8.ValidString(value) {
		return fmt.Errorf("%w in field %q", errBadUTF8, name)
	}
	i := f.index(name)
	if i >= 0 {
		f.vals[i] = append(f.vals[i], value) // a full slice: appends copy out
		return nil
	}
	if len(f.names) >= maxFields {
		return errTooManyFields
	}
	n := len(f.arena)
	f.arena = append(f.arena, value)
	f.names = append(f.names, name)
	f.vals = append(f.vals, f.arena[n:n+1:n+1])
	return nil
}

// name records a field with no values (an empty JSON array), unless the
// field is already present.
func (f *fieldSet) name(name string) {
	if f.index(name) < 0 {
		f.names = append(f.names, name)
		f.vals = append(f.vals, []string{})
	}
}

func (f *fieldSet) parseURLEncoded(body []byte, maxFields int) error {
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
			return errors.New("semicolon in urlencoded body")
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err := f.unescape(k, len(body))
		if err != nil {
			return err
		}
		val, err = f.unescape(val, len(body))
		if err != nil {
			return err
		}
		if err := f.add(k, val, maxFields); err != nil {
			return err
		}
	}
	return nil
}

// unescape decodes application/x-www-form-urlencoded as url.QueryUnescape
// does ('+' is a space, "%XX" a byte, any other '%' an error), skipping the
// work when there is nothing to decode. Decoded text is appended to f.dec,
// sized once for the whole body (decoding never grows text), so one
// allocation serves every field of a post.
func (f *fieldSet) unescape(s string, bodyLen int) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			e := s[i:]
			if len(e) > 3 {
				e = e[:3]
			}
			return "", url.EscapeError(e)
		}
	}
	if f.dec == nil || cap(f.dec)-len(f.dec) < len(s) {
		f.dec = make([]byte, 0, max(bodyLen, len(s)))
	}
	start := len(f.dec)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			f.dec = append(f.dec, ' ')
		case '%':
			f.dec = append(f.dec, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			f.dec = append(f.dec, c)
		}
	}
	// f.dec never grows in place past its capacity (a new array is made
	// instead), so these bytes are never written again.
	d := f.dec[start:]
	return unsafe.String(unsafe.SliceData(d), len(d)), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func (f *fieldSet) parseMultipart(body []byte, boundary string, maxFields int, allowFiles bool) error {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	parts := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		parts++
		if parts > 4*maxFields {
			return errTooManyFields
		}
		if p.FileName() != "" {
			if !allowFiles {
				return errFilePart
			}
			continue // left to the wrapped handler, which re-reads the body
		}
		name := p.FormName()
		if name == "" {
			return errFieldName
		}
		if cte := p.Header.Get("Content-Transfer-Encoding"); cte != "" && !strings.EqualFold(cte, "8bit") && !strings.EqualFold(cte, "binary") && !strings.EqualFold(cte, "7bit") {
			return fmt.Errorf("content-transfer-encoding %q", cte)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return err
		}
		if err := f.add(name, string(b), maxFields); err != nil {
			return err
		}
	}
}

func (f *fieldSet) parseJSON(body []byte, maxFields int) error {
	// encoding/json silently replaces invalid UTF-8 with U+FFFD; refuse it.
	if !utf8.Valid(body) {
		return errBadUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errJSONShape
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errJSONShape
		}
		tok, err = dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case string:
			if err := f.add(key, t, maxFields); err != nil {
				return err
			}
		case json.Delim:
			if t != '[' {
				return errJSONShape
			}
			n := 0
			for dec.More() {
				tok, err := dec.Token()
				if err != nil {
					return err
				}
				s, ok := tok.(string)
				if !ok {
					return errJSONShape
				}
				if n++; n > 4*maxFields {
					return errTooManyFields
				}
				if err := f.add(key, s, maxFields); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			f.name(key) // an empty array still names the field
		default:
			return errJSONShape
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}
