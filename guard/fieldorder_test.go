package guard_test

import (
	"net/http/httptest"
	"testing"

	"github.com/formguard/formguard/guard"
)

// TestForbiddenFieldWinsWhateverTheOrder: a field choosing a sender or
// recipient is reported as such (and so penalised) even when an unknown
// or duplicated field comes before it in the body.
func TestForbiddenFieldWinsWhateverTheOrder(t *testing.T) {
	for _, body := range []string{
		"zzz=1&" + contact("bcc", "x@evil.test"),
		contact("zzz", "1", "bcc", "x@evil.test"),
		"name=a&name=b&" + contact("reply-to", "x@evil.test"),
		contact("bcc", "x@evil.test", "zzz", "1"),
	} {
		g, _ := newGuard(t)
		_, err := g.CheckForm(httptest.NewRecorder(), req{body: body}.build(), "contact")
		if e := guard.AsError(err); err == nil || e.Code != "forbidden_field" {
			t.Errorf("%s: %v, want forbidden_field", body, err)
		}
	}
}
