package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// Answer is what a client sees of a response: status, every header and the
// body, with a JSON answer's submission id replaced by "ID" once its shape
// is checked, and Date by a placeholder.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// idRE is the submission id in a JSON success answer: 24 characters of the
// guard's lower-case base32 alphabet.
var idRE = regexp.MustCompile(`"id":"[a-z2-7]{24}"`)

// readAnswer reads and closes resp.
func readAnswer(t testing.TB, resp *http.Response) Answer {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header.Clone()
	if len(h["Date"]) == 1 {
		h["Date"] = []string{"(a date)"}
	}
	body := string(b)
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		if n := len(idRE.FindAllString(body, -1)); n != 1 {
			t.Fatalf("a JSON success answer carries %d ids of the expected shape, want 1: %s", n, body)
		}
		body = idRE.ReplaceAllString(body, `"id":"ID"`)
	}
	return Answer{resp.StatusCode, h, body}
}

// sameAnswer fails unless b is a, header for header and byte for byte.
func sameAnswer(t testing.TB, a, b Answer) {
	t.Helper()
	if a.Status != b.Status {
		t.Errorf("status: %d, then %d", a.Status, b.Status)
	}
	for k, v := range a.Header {
		if got := b.Header[k]; strings.Join(got, "\x00") != strings.Join(v, "\x00") {
			t.Errorf("header %s: %q, then %q", k, v, got)
		}
	}
	for k, v := range b.Header {
		if _, ok := a.Header[k]; !ok {
			t.Errorf("header %s: only in the second answer (%q)", k, v)
		}
	}
	if a.Body != b.Body {
		t.Errorf("body:\n%q\nthen\n%q", a.Body, b.Body)
	}
}
