package attack

import (
	"strings"
	"testing"
)

// FuzzAudit feeds arbitrary mail to the audit: it parses hostile MIME
// (whatever a broken or subverted service might send) and must never
// panic; whatever the message, an envelope off the site domain or a
// recipient other than the contact form's must never pass as clean, and
// the report's counts must agree with its violations.
func FuzzAudit(f *testing.F) {
	key, rec := testKey(&testing.T{})
	f.Add(good("contact", "support@example.test").build(&testing.T{}, key).Data, "bounces@example.test", "support@example.test")
	f.Add([]byte("From: a@b\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: multipart/mixed; boundary=y\r\n\r\n--y\r\n\r\nhi\r\n--y--\r\n--x--\r\n"), "x@example.test", "support@example.test")
	f.Add([]byte("Content-Transfer-Encoding: base64\r\nContent-Type: text/html\r\n\r\nPHNjcmlwdD4=\r\n"), "", "")
	f.Add([]byte("\r\n"), "a@example.test", "b@example.test")
	p := testPolicy(rec)
	f.Fuzz(func(t *testing.T, data []byte, from, to string) {
		r := Audit(p, []*Request{contactReq()}, []Received{{MailFrom: from, RcptTo: []string{to}, Data: data}})
		if r.Total.Violations != len(r.Violations) || r.OK() != (len(r.Violations) == 0) || r.Total.Delivered != 1 {
			t.Fatalf("inconsistent report: %+v, %d violations", r.Total, len(r.Violations))
		}
		if r.OK() && (domainOf(from) != "example.test" || !strings.EqualFold(to, "support@example.test")) {
			t.Fatalf("envelope %q -> %q passed the audit", from, to)
		}
	})
}
