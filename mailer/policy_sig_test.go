package mailer

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// Policy.Check on a signature field prepended to a message that passed the
// unsigned check: the real signature passes, every way a bad one could
// look is a policy error.
func TestCheckSignatureField(t *testing.T) {
	f := newFixture(t, "", TransportFunc(func(context.Context, Envelope, []byte) error { return nil }), loadKey(t, "ed25519.pem"), nil)
	built, err := f.m.build(contact("sub-1"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := built[0].msg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	raw, env := buf.Bytes(), built[0].env
	if err := f.m.policy.check(env, raw, false); err != nil {
		t.Fatal(err)
	}
	signed, err := f.m.dkim.sign(f.m.domain, f.m.now, raw)
	if err != nil {
		t.Fatal(err)
	}
	sig := string(signed[:len(signed)-len(raw)])
	sel := "s=" + f.m.policy.Selector + ";"
	for _, tc := range []struct {
		name, field string
		ok          bool
	}{
		{"the real signature", sig, true},
		{"another d=", strings.Replace(sig, "d=example.test", "d=evil.example", 1), false},
		{"another s=", strings.Replace(sig, sel, "s=other;", 1), false},
		{"a duplicate d= tag", strings.Replace(sig, "d=example.test;", "d=example.test; d=example.test;", 1), false},
		{"two signatures", sig + sig, false},
		{"a signature and a Sender field", sig + "Sender: v@visitor.example\r\n", false},
		{"a signature and a Bcc field", sig + "Bcc: v@visitor.example\r\n", false},
		{"a field with no colon", "DKIM-Signature v=1\r\n", false},
		{"a continuation line only", " d=example.test\r\n", false},
		{"an unterminated field", strings.TrimSuffix(sig, "\r\n"), false},
		{"nothing", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := append([]byte(tc.field), raw...)
			err := f.m.policy.Check(env, msg)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrPolicy) {
				t.Fatalf("Check = %v, not a policy error", err)
			}
		})
	}
	if !strings.Contains(sig, "d=example.test;") || !strings.Contains(sig, sel) {
		t.Fatalf("signature tags not as the cases assume: %q", sig)
	}
}
