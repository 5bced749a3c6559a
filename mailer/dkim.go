package mailer

import (
	"bytes"
	"crypto"
	"fmt"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Canonicalization names a DKIM canonicalization (RFC 6376 3.4), applied
// to both header and body.
type Canonicalization string

// Canonicalizations. Relaxed survives the whitespace changes relays make.
const (
	Relaxed Canonicalization = "relaxed"
	Simple  Canonicalization = "simple"
)

// DefaultCanonicalization is used when DKIM.Canonicalization is empty.
const DefaultCanonicalization = Relaxed

// signedHeaders are the fields every signature covers (RFC 6376 5.4.1:
// From is required; the rest are the ones a forger would change).
var signedHeaders = []string{"From", "Reply-To", "To", "Subject", "Date",
	"Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"}

// oversignedHeaders are listed once more than they occur, so a relay or
// forger cannot add a second instance without breaking the signature
// (RFC 6376 5.4.2, 8.15).
var oversignedHeaders = []string{"From", "Subject", "Reply-To"}

// DKIM configures signing (RFC 6376, and RFC 8463 for Ed25519). The
// signing domain d= is always the From domain, Config.Domain.
type DKIM struct {
	// Selector locates the public key at <Selector>._domainkey.<Domain>.
	Selector string
	// Signer is the private key: *rsa.PrivateKey (>= 2048 bits) or
	// ed25519.PrivateKey, e.g. from LoadKey.
	Signer crypto.Signer
	// Canonicalization is relaxed or simple. Zero value: relaxed.
	Canonicalization Canonicalization
}

// validate checks d; the zero DKIM means "unsigned".
func (d *DKIM) validate() error {
	if d.Signer == nil && d.Selector == "" {
		return nil
	}
	if d.Signer == nil {
		return fmt.Errorf("mailer: DKIM.Signer is required with selector %q", d.Selector)
	}
	if !validLabels(d.Selector) {
		return fmt.Errorf("mailer: DKIM.Selector %q is not a valid DNS label sequence", d.Selector)
	}
	if err := checkSigner(d.Signer); err != nil {
		return err
	}
	switch d.Canonicalization {
	case "":
		d.Canonicalization = DefaultCanonicalization
	case Relaxed, Simple:
	default:
		return fmt.Errorf("mailer: DKIM.Canonicalization %q (want relaxed or simple)", d.Canonicalization)
	}
	return nil
}

// signer returns a fresh go-mail signer. go-mail's Signer caches the
// algorithm on first use without a lock, so one is built per message
// rather than shared across goroutines.
func (d *DKIM) signer(domain string, now func() time.Time) *mail.DKIMSigner {
	s := mail.NewDKIMSigner(domain, d.Selector, d.Signer)
	c := mail.CanonicalizationRelaxed
	if d.Canonicalization == Simple {
		c = mail.CanonicalizationSimple
	}
	s.HeaderCanonicalization(c)
	s.BodyCanonicalization(c)
	s.SignHeaders(signedHeaders...)
	s.OversignHeaders(oversignedHeaders...)
	s.NowFunc = now
	return s
}

// sign returns raw with a DKIM-Signature field prepended, exactly as
// go-mail's Msg.WriteTo would have written it (go-mail's signer, fed the
// same header block and body), refolded for relaxed canonicalization. The
// signature's t= is now(): the Mailer signs in the delivery worker, right
// before sending. raw is not modified.
func (d *DKIM) sign(domain string, now func() time.Time, raw []byte) ([]byte, error) {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, violation(RuleMalformed, "no end of header")
	}
	// The header block keeps its final CRLF; the body starts after the
	// empty line (go-mail's splitMessage).
	sig, err := d.signer(domain, now).Sign(raw[:end+2], raw[end+4:])
	if err != nil {
		return nil, fmt.Errorf("mailer: DKIM signing: %w", err)
	}
	if d.Canonicalization == Relaxed {
		if len(raw) > 0 && (raw[0] == ' ' || raw[0] == '\t') {
			// raw's first line would continue the field: refold the
			// whole (the Policy refuses such a message afterwards).
			return refoldSignature(append(append([]byte(nil), sig...), raw...)), nil
		}
		// The field ends where raw begins, so it is refolded alone and
		// the message copied once.
		sig = string(refoldSignature([]byte(sig)))
	}
	out := make([]byte, 0, len(sig)+len(raw))
	out = append(out, sig...)
	out = append(out, raw...)
	return out, nil
}

// maxLine is where refoldSignature breaks lines (RFC 5322 2.1.1 SHOULD).
const maxLine = 78

// refoldSignature repairs go-mail v0.8.1's relaxed DKIM-Signature folding.
//
// go-mail signs the unfolded tag list but emits it hard-wrapped every 76
// columns, even inside the h= tag. Relaxed canonicalization (RFC 6376
// 3.4.2) turns such a break into a space, so a verifier hashes
// "h=From:S ubject" where the signer hashed "h=From:Subject" and the
// signature fails whenever h= is long (ours is). The fix: remove every fold
// go-mail inserted (recovering the exact signed text) and fold again only
// where relaxed canonicalization is indifferent: after the "; " between
// tags, where the added whitespace collapses into the existing space, and
// inside b=, whose whitespace verifiers strip (RFC 6376 3.5). Simple
// canonicalization output is emitted unfolded by go-mail and left alone.
func refoldSignature(raw []byte) []byte {
	const name = "DKIM-Signature:"
	if !bytes.HasPrefix(raw, []byte(name)) {
		return raw
	}
	// The field ends at the first CRLF not followed by whitespace.
	end := 0
	for {
		i := bytes.Index(raw[end:], []byte("\r\n"))
		if i < 0 {
			return raw
		}
		end += i + 2
		if end >= len(raw) || (raw[end] != ' ' && raw[end] != '\t') {
			break
		}
	}
	field := raw[:end-2]
	if !bytes.Contains(field, []byte("\r\n")) {
		return raw // already one line (simple canonicalization)
	}
	if bytes.ContainsAny(bytes.ReplaceAll(field, []byte("\r\n"), nil), "\r\n") {
		return raw // a bare CR or LF: not go-mail's folding, leave it as it is
	}
	flat := bytes.ReplaceAll(field, []byte("\r\n "), nil)
	flat = bytes.ReplaceAll(flat, []byte("\r\n\t"), nil)

	var out bytes.Buffer
	out.Grow(len(raw) + 64)
	col := 0
	parts := bytes.SplitAfter(flat, []byte("; "))
	for i, p := range parts {
		if i > 0 && col+len(bytes.TrimRight(p, " ")) > maxLine {
			// "; " + CRLF SP and ";" + CRLF SP unfold alike under relaxed.
			out.Truncate(out.Len() - 1)
			out.WriteString("\r\n ")
			col = 1
		}
		if bytes.HasPrefix(p, []byte("b=")) {
			// Hard-wrap the signature value; whitespace there is ignored.
			for len(p) > 0 {
				room := maxLine - col
				if room < 8 {
					out.WriteString("\r\n ")
					col, room = 1, maxLine-1
				}
				n := min(room, len(p))
				out.Write(p[:n])
				col += n
				p = p[n:]
			}
			continue
		}
		out.Write(p)
		col += len(p)
	}
	out.WriteString("\r\n")
	out.Write(raw[end:])
	return out.Bytes()
}
