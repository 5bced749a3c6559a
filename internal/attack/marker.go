package attack

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
)

// Marker is the token a request puts in the visitor's message so that the
// audit can tell which request a message answers even when the answer
// carried no submission ID (plain HTML posts get a redirect).
func Marker(id int) string { return fmt.Sprintf("fgref%07dz", id) }

var markerPattern = regexp.MustCompile(`fgref[0-9]{7}z`)

func markerRE(s string) []string { return markerPattern.FindAllString(s, 8) }

func newQP(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }

// subRef returns the submission ID in a raw message's Message-ID
// (<submission.queue@domain>), "" when there is none.
func subRef(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	id := strings.Trim(m.Header.Get("Message-Id"), "<> ")
	if i := strings.IndexByte(id, '.'); i > 0 {
		return id[:i]
	}
	return ""
}
