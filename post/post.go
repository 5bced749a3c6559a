// Package post holds what the guard hands to the mailer: an accepted
// Submission and the Kind of form it came from. It exists so that neither
// package imports the other.
package post

import (
	"net/netip"
	"time"
)

// Kind is a form's kind, which decides where its recipients come from.
type Kind int

const (
	// Contact forms send to recipients from configuration only.
	Contact Kind = iota
	// Share forms send a fixed template to visitor-chosen recipients,
	// at most guard.Form.MaxRecipients of them, each rate-limited.
	Share
)

func (k Kind) String() string {
	switch k {
	case Contact:
		return "contact"
	case Share:
		return "share"
	}
	return "unknown"
}

// Submission is an accepted, validated form post. It never carries a sender
// address: the visitor's address is only ever a candidate Reply-To. Every
// string in it is valid UTF-8 and every single-line field is free of control
// characters and encoded words.
//
// A share form's URL carries nothing a visitor wrote but the choice of a
// page: the query and fragment of the posted url are dropped, and a url
// whose path, percent-decoded, holds whitespace, a control or format
// character, '@' or a link (as the link limit counts them) is refused
// with guard.ErrOffsiteURL.
type Submission struct {
	ID         string            // random, URL-safe; in logs and the Message-ID
	Form       string            // the form's name
	Kind       Kind              // contact or share
	Name       string            // visitor's name (single line, no '@' '<' '>' even in NFKC form, may be "")
	ReplyTo    string            // visitor's validated addr-spec (may be "")
	Subject    string            // contact: visitor's subject; share: always ""
	Message    string            // visitor's text (multi-line, length-capped)
	URL        string            // share: the shared page: scheme, host (an allowed origin) and path only; see below
	Recipients []string          // envelope recipients, deduplicated: domain lower-case, punycode, no trailing dot
	Fields     map[string]string // extra fields the form allow-listed
	ClientIP   netip.Addr        // resolved client IP
	ClientKey  string            // hashed client key (IPv4 or IPv6 /64)
	Received   time.Time         // when the guard accepted it
	Next       string            // visitor's "_next" redirect, validated same-site
}
