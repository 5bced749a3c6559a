package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// idRE is the submission id in a JSON success answer: 24 characters of
// newID's base32 alphabet.
var idRE = regexp.MustCompile(`"id":"[a-z2-7]{24}"`)

// answer is what a client sees of a response: status, every header and the
// body, with the submission id (random in each answer) replaced by "ID"
// once its shape is checked.
type answer struct {
	status int
	header http.Header
	body   string
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header.Clone()
	// Date is the time of the answer; both carry one.
	if len(h["Date"]) != 1 {
		delete(h, "Date")
	} else {
		h["Date"] = []string{"(a date)"}
	}
	body := string(b)
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		if n := len(idRE.FindAllString(body, -1)); n != 1 {
			t.Fatalf("a JSON success answer carries %d ids of the expected shape, want 1: %s", n, body)
		}
		body = idRE.ReplaceAllString(body, `"id":"ID"`)
	}
	return answer{resp.StatusCode, h, body}
}

// sameAnswer fails unless a honeypot hit's answer is the accept's, header
// for header and byte for byte (the id aside).
func sameAnswer(t *testing.T, accept, honeypot answer) {
	t.Helper()
	if accept.status != honeypot.status {
		t.Errorf("status: accept %d, honeypot %d", accept.status, honeypot.status)
	}
	for k, v := range accept.header {
		if got := honeypot.header[k]; strings.Join(got, "\x00") != strings.Join(v, "\x00") {
			t.Errorf("header %s: accept %q, honeypot %q", k, v, got)
		}
	}
	for k, v := range honeypot.header {
		if _, ok := accept.header[k]; !ok {
			t.Errorf("header %s: only the honeypot answer has it (%q)", k, v)
		}
	}
	if accept.body != honeypot.body {
		t.Errorf("body:\naccept   %q\nhoneypot %q", accept.body, honeypot.body)
	}
}

// TestHoneypotAnswerIsAnAccept posts a real accept and a honeypot hit to
// the handler for each kind of answer and requires the two to be
// indistinguishable; only the accept is queued.
func TestHoneypotAnswerIsAnAccept(t *testing.T) {
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello there")
	for _, tc := range []struct {
		name, path, body, honeypot string
		header                     map[string]string
		wantStatus                 int
	}{
		{"JSON by Accept", "/f/hello", good, good + "&_gotcha=x", jsonAccept, 200},
		{"JSON body", "/f/hello", `{"name":"Ada","email":"ada@example.org","message":"Hi"}`,
			`{"name":"Ada","email":"ada@example.org","message":"Hi","_gotcha":"x"}`,
			map[string]string{"Content-Type": "application/json"}, 200},
		{"thank-you page", "/f/hello", good, good + "&_gotcha=x", nil, 200},
		{"success_url redirect", "/f/thanks", good, good + "&_gotcha=x", nil, 303},
		{"_next redirect", "/f/hello", good + "&_next=%2Fsent", good + "&_next=%2Fsent&_gotcha=x", nil, 303},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, testConfig)
			post := func(remote, b string) answer {
				r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(b))
				r.RemoteAddr = remote
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.Header.Set("Origin", origin)
				for k, v := range tc.header {
					r.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				ts.ServeHTTP(w, r)
				return readAnswer(t, w.Result())
			}
			accept := post("192.0.2.1:5555", tc.body)
			if n := len(ts.queued(t)); n != 1 || accept.status != tc.wantStatus {
				t.Fatalf("the accept: status %d, %d queued; want %d and 1: %s", accept.status, n, tc.wantStatus, accept.body)
			}
			honeypot := post("192.0.2.2:5555", tc.honeypot)
			if n := len(ts.queued(t)); n != 1 { // the accept's, still waiting
				t.Fatalf("the honeypot hit queued %d messages", n-1)
			}
			sameAnswer(t, accept, honeypot)
		})
	}
}

// TestServiceHoneypotAnswerIsAnAccept does the same over TCP against the
// running service, so every header net/http adds is compared too.
func TestServiceHoneypotAnswerIsAnAccept(t *testing.T) {
	base, _, _, _ := startService(t, serviceConfig)
	good := form("name", "Ada", "email", "ada@example.org", "message", "Hello there")
	for _, tc := range []struct {
		name   string
		accept string
	}{
		{"JSON", "application/json"},
		{"HTML", "text/html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			post := func(b string) answer {
				req, _ := http.NewRequest(http.MethodPost, base+"/f/hello", strings.NewReader(b))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", "http://site.test")
				req.Header.Set("Accept", tc.accept)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return readAnswer(t, resp)
			}
			accept := post(good)
			if accept.status != 200 {
				t.Fatalf("the accept: %d %s", accept.status, accept.body)
			}
			sameAnswer(t, accept, post(good+"&_gotcha=x"))
		})
	}
}
