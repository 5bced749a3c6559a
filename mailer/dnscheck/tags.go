package dnscheck

import (
	"fmt"
	"strings"
)

// tag is one tag=value pair of a tag list.
type tag struct {
	name, value string
}

// parseTagList splits a DKIM-style tag list (RFC 6376 section 3.2, which DMARC
// reuses in RFC 7489 section 6.4): tag-specs separated by ";", each
// "name = value", whitespace around names and values ignored, a trailing ";"
// allowed. Tag names are case-sensitive and must not repeat.
func parseTagList(s string) ([]tag, error) {
	var out []tag
	seen := map[string]bool{}
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		spec = trimWSP(spec)
		if spec == "" {
			if i == len(specs)-1 {
				break // trailing ";" is allowed
			}
			return nil, fmt.Errorf("empty tag-spec at position %d", i+1)
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("tag-spec %q has no \"=\"", spec)
		}
		name, value = trimWSP(name), trimWSP(value)
		if !validTagName(name) {
			return nil, fmt.Errorf("invalid tag name %q", name)
		}
		if !validTagValue(value) {
			return nil, fmt.Errorf("tag %s has an invalid value %q", name, value)
		}
		if seen[name] {
			return nil, fmt.Errorf("tag %s appears twice", name)
		}
		seen[name] = true
		out = append(out, tag{name, value})
	}
	return out, nil
}

// trimWSP strips folding whitespace (space, tab, CR, LF) from both ends.
func trimWSP(s string) string {
	return strings.Trim(s, " \t\r\n")
}

// validTagName: tag-name = ALPHA *ALNUMPUNC, ALNUMPUNC = ALPHA / DIGIT / "_".
func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// validTagValue: tval *( 1*(WSP / FWS) tval ), tval = 1*VALCHAR, VALCHAR =
// %x21-3A / %x3C-7E. An empty value is allowed.
func validTagValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case c >= 0x21 && c <= 0x7e && c != ';':
		default:
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// removeWSP deletes all whitespace, for base64 values that may be folded
// (RFC 6376 section 3.6.1, "p=").
func removeWSP(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}
