package attack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/formguard/formguard/guard/captcha"
)

// TestSiteverifyWithTurnstileVerifier holds the fake to the protocol the
// guard's own Turnstile verifier speaks: good tokens pass once, junk and
// spent tokens fail with the documented codes, and nothing the verifier
// sends strays from the documented fields.
func TestSiteverifyWithTurnstileVerifier(t *testing.T) {
	sv, err := StartSiteverify()
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()
	sv.SetSecret("s3cret")
	verifier := func() captcha.Verifier {
		v, err := captcha.NewTurnstile(captcha.TurnstileConfig{Secret: "s3cret", Hostnames: []string{SiteDomain}, VerifyURL: sv.URL})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ctx := context.Background()
	req := func(tok string) captcha.Request {
		return captcha.Request{Form: "signup", Token: tok, RemoteIP: netip.MustParseAddr("198.18.0.1")}
	}
	good := sv.Issue()
	if err := verifier().Verify(ctx, req(good)); err != nil {
		t.Fatalf("good token: %v", err)
	}
	// A fresh verifier (its own replay cache) reaches the fake again.
	if err := verifier().Verify(ctx, req(good)); !errors.Is(err, captcha.ErrReplayed) {
		t.Errorf("spent token: %v, want ErrReplayed", err)
	}
	if err := verifier().Verify(ctx, req("junk-token")); !errors.Is(err, captcha.ErrInvalid) {
		t.Errorf("junk token: %v, want ErrInvalid", err)
	}
	st := sv.Stats()
	if st.Calls != 3 || st.Good != 1 || st.Duplicate != 1 || st.Junk != 1 || st.ProtocolErrors != 0 {
		t.Errorf("stats %+v", st)
	}

	// A wrong secret is refused, and counted as a protocol error.
	bad, _ := captcha.NewTurnstile(captcha.TurnstileConfig{Secret: "other", Hostnames: []string{SiteDomain}, VerifyURL: sv.URL})
	if err := bad.Verify(ctx, req(sv.Issue())); !errors.Is(err, captcha.ErrConfig) {
		t.Errorf("wrong secret: %v, want ErrConfig", err)
	}
	if sv.Stats().ProtocolErrors != 1 {
		t.Errorf("wrong secret not counted: %+v", sv.Stats())
	}
}

// TestSiteverifyIdempotency: a retry with the same idempotency_key and
// token is answered as the first call was, not as a duplicate.
func TestSiteverifyIdempotency(t *testing.T) {
	sv, err := StartSiteverify()
	if err != nil {
		t.Fatal(err)
	}
	defer sv.Close()
	sv.SetSecret("k")
	tok := sv.Issue()
	post := func(key string) string {
		form := url.Values{"secret": {"k"}, "response": {tok}, "remoteip": {"198.18.0.9"}, "idempotency_key": {key}}
		resp, err := http.Post(sv.URL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	key := "0b9f8e4c-3a1d-4c2e-9f0a-1b2c3d4e5f60"
	first := post(key)
	if !strings.Contains(first, `"success":true`) || post(key) != first {
		t.Errorf("retry with the same key answered differently from %s", first)
	}
	if again := post("1b9f8e4c-3a1d-4c2e-9f0a-1b2c3d4e5f60"); !strings.Contains(again, "timeout-or-duplicate") {
		t.Errorf("another key for a spent token: %s", again)
	}
	if st := sv.Stats(); st.ProtocolErrors != 0 {
		t.Errorf("protocol errors: %s", st.FirstError)
	}
}
