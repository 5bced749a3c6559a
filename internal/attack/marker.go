package attack

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"regexp"
)

// Marker is the token a request puts in the visitor's message so that the
// audit can tell which request a message answers even when the answer
// carried no submission ID (plain HTML posts get a redirect).
func Marker(id int) string { return fmt.Sprintf("fgref%07dz", id) }

var markerPattern = regexp.MustCompile(`fgref[0-9]{7}z`)

func markerRE(s string) []string { return markerPattern.FindAllString(s, 8) }

func newQP(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }
