package guard

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

// countLinks counts what a mail client or browser could turn into a link
// in s, each link once however many of these marks it carries:
//
//   - a scheme: "http:", "https:", "ftp:", "mailto:";
//   - an HTML anchor "<a " and a scheme-relative "//host";
//   - a host name starting "www.";
//   - a dotted IPv4 literal ("1.2.3.4") and a bracketed IPv6 one ("[::1]");
//   - a bare domain name ("evil.example/login", "evil.com", and so the
//     domain of an address): labels of letters, digits, '-' and '_'
//     separated by dots, whose last label is an "xn--" label or a top-level
//     domain ICANN delegates (from the public suffix list), or one reserved
//     for testing and local use (RFC 2606, RFC 6761).
//
// Requiring a real top-level domain keeps ordinary text from counting:
// "e.g.", "i.e.", "3.5", "end. Next", "Node.js", "index.html".
//
// Text with non-ASCII characters is first folded (foldText): full-width and
// other compatibility forms ("ｈｔｔｐｓ：／／evil．com") are read as the
// ASCII their NFKC form is. ASCII case never changes the count. The scan is
// linear in len(s); ASCII text costs no allocation unless it holds a
// dotted word that needs the public suffix list.
func countLinks(s string) int {
	if !isASCII(s) {
		s = foldText(s)
	}
	sc := linkScan{lookups: maxSuffixLookups}
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case byteClass[c] == classWord:
			j, dotted := i+1, false
			for j < len(s) && byteClass[s[j]] <= classDot {
				dotted = dotted || s[j] == '.'
				j++
			}
			switch {
			case j < len(s) && s[j] == ':' && isScheme(s[i:j]):
				n++
				i = skipURL(s, j+1)
			case j < len(s) && s[j] == '@':
				i = j + 1 // a local part: the domain after '@' is what counts
			case dotted && sc.isHost(s[i:j]):
				n++
				i = skipURL(s, j)
			default:
				i = j
			}
		case c == '<' && i+2 < len(s) && lower(s[i+1]) == 'a' && (isSpace(s[i+2]) || s[i+2] == '/'):
			n++
			i = skipTag(s, i+3)
		case c == '/' && i+2 < len(s) && s[i+1] == '/' && (byteClass[s[i+2]] == classWord || s[i+2] == '['):
			n++
			i = skipURL(s, i+2)
		case c == '[':
			if end := ipv6Literal(s, i); end > 0 {
				n++
				i = skipURL(s, end)
			} else {
				i++
			}
		default:
			i++
		}
	}
	return n
}

// Byte classes of the scan: host name bytes, the dot, bytes that end a
// link (whitespace, controls, quotes, brackets other than '[' ']', ',',
// ';' and non-ASCII), and the rest.
const (
	classWord = iota // ASCII letter or digit, '-', '_'
	classDot
	classOther
	classStop
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			t[c] = classWord
		case c == '.':
			t[c] = classDot
		case c <= ' ' || c >= 0x7f || strings.IndexByte("<>\"'`(){}|\\^,;", byte(c)) >= 0:
			t[c] = classStop
		default:
			t[c] = classOther
		}
	}
	return t
}()

// maxSuffixLookups bounds the public suffix list lookups of one scan (each
// costs about 0.1 µs and an allocation). Past it, a dotted word that would
// need one counts as a link: text stuffed with dotted words is refused
// rather than made expensive to read.
const maxSuffixLookups = 64

// linkScan is one scan's state: its lookup budget and its last lookup, so
// "a.html, b.html, c.html" costs one.
type linkScan struct {
	lookups int
	last    string
	lastTLD bool
}

// foldText returns s in ASCII for the scan: each character whose NFKC
// form is ASCII ("ｈ", "．", "①", "ﬁ", a no-break space) is replaced by
// that form, the ideographic full stops U+3002 and U+FF61 by '.', as IDNA
// reads them, and every other character by DEL, which ends a link.
//
// Character by character rather than NFKC of the whole text: composition
// only ever turns a letter and its marks into a non-ASCII letter, so it
// can only hide a link, never reveal one, and the per-character form is
// several times cheaper on the full-width text an attacker would send.
func foldText(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf {
				j++
			}
			b = append(b, s[i:j]...)
			i = j
			continue
		}
		p := norm.NFKC.PropertiesString(s[i:])
		size := max(p.Size(), 1)
		switch d := p.Decomposition(); {
		case len(d) > 0 && isASCII(string(d)):
			b = append(b, d...)
		case strings.HasPrefix(s[i:], "\u3002"), strings.HasPrefix(s[i:], "\uff61"):
			b = append(b, '.')
		default:
			b = append(b, 0x7f)
		}
		i += size
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// skipURL returns the index of the byte that ends the link continuing at
// s[i:]. Ending early can only count more links, never fewer.
func skipURL(s string, i int) int {
	for i < len(s) && byteClass[s[i]] != classStop {
		i++
	}
	return i
}

// skipTag returns the index after the '>' that ends the tag whose
// attributes start at s[i:], so an anchor's href is not counted again.
func skipTag(s string, i int) int {
	if k := strings.IndexByte(s[i:], '>'); k >= 0 {
		return i + k + 1
	}
	return len(s)
}

func isScheme(w string) bool {
	for _, x := range [...]string{"http", "https", "ftp", "mailto"} {
		if strings.EqualFold(w, x) {
			return true
		}
	}
	return false
}

// ipv6Literal returns the index after the ']' of a bracketed IPv6 literal
// starting at s[i] == '[', or 0. The characters are checked before
// netip.ParseAddr so ordinary brackets ("[1]", "[sic]") cost nothing.
func ipv6Literal(s string, i int) int {
	const maxLen = len("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]")
	colons := 0
	for j := i + 1; j < len(s) && j-i < maxLen; j++ {
		c := lower(s[j])
		switch {
		case c == ']':
			if colons < 2 {
				return 0
			}
			if _, err := netip.ParseAddr(s[i+1 : j]); err != nil {
				return 0
			}
			return j + 1
		case c == ':':
			colons++
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', c == '.':
		default:
			return 0
		}
	}
	return 0
}

// isHost reports whether w (letters, digits, '-', '_' and dots) is read
// as a host: "www." and more, a dotted IPv4 literal, or a domain name
// under a real top-level domain. Dots, hyphens and underscores at either
// end are punctuation ("see evil.com.", "-evil.com").
func (sc *linkScan) isHost(w string) bool {
	w = strings.Trim(w, ".-_")
	if len(w) > 4 && strings.EqualFold(w[:4], "www.") {
		return true
	}
	last := strings.LastIndexByte(w, '.')
	if last <= 0 {
		return false
	}
	labels, octets := 0, 0
	for rest := w; ; {
		l := rest
		k := strings.IndexByte(rest, '.')
		if k >= 0 {
			l, rest = rest[:k], rest[k+1:]
		}
		if l == "" || len(l) > 63 {
			return false
		}
		labels++
		if isOctet(l) {
			octets++
		}
		if k < 0 {
			break
		}
	}
	if labels == 4 && octets == 4 {
		return true // dotted IPv4; leading zeros too, which some read as octal
	}
	return sc.isTLD(w[last+1:])
}

// isOctet reports whether l is a decimal number from 0 to 255.
func isOctet(l string) bool {
	if len(l) == 0 || len(l) > 3 {
		return false
	}
	v := 0
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
		v = v*10 + int(l[i]-'0')
	}
	return v <= 255
}

// reservedTLDs are top-level names not delegated on the public Internet
// that mail clients still turn into links (RFC 2606, RFC 6761, RFC 6762;
// "internal" by ICANN in 2024).
var reservedTLDs = [...]string{"test", "example", "invalid", "localhost", "local", "internal"}

// isTLD reports whether l, a domain's last label, is a top-level domain:
// an "xn--" label, or letters that the public suffix list has as an ICANN
// top-level domain, or a reserved name.
func (sc *linkScan) isTLD(l string) bool {
	if len(l) > 4 && strings.EqualFold(l[:4], "xn--") {
		return true
	}
	if len(l) < 2 {
		return false
	}
	for i := 0; i < len(l); i++ {
		if c := lower(l[i]); c < 'a' || c > 'z' {
			return false
		}
	}
	for _, r := range reservedTLDs {
		if strings.EqualFold(l, r) {
			return true
		}
	}
	if strings.EqualFold(l, sc.last) {
		return sc.lastTLD
	}
	if sc.lookups == 0 {
		return true
	}
	sc.lookups--
	_, icann := publicsuffix.PublicSuffix(strings.ToLower(l))
	sc.last, sc.lastTLD = l, icann
	return icann
}
