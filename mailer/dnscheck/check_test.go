package dnscheck_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/formguard/formguard/mailer/dnscheck"
)

// relayIP is the relay most test zones authorise; its PTR is
// relay.example.net, which resolves back to it.
var relayIP = netip.MustParseAddr("192.0.2.10")

// loadKey reads a public key committed under testdata/dns/keys.
func loadKey(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(zoneDir, "keys", name+".pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testEd25519 is the Ed25519 key published in dkim-ed25519.test, derived
// from a fixed seed so that no private key needs committing.
func testEd25519() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("formguard dnscheck test key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

func TestCheck(t *testing.T) {
	z := startZoneServer(t)
	rsa2048 := loadKey(t, "rsa2048")
	tests := []struct {
		name string
		cfg  dnscheck.Config // Server is filled in; Selector, PublicKey and RelayIPs default below
		want []dnscheck.Code
		// detail, when set, must appear in the detail of the first finding.
		detail string
	}{
		{name: "a clean domain has no findings", cfg: dnscheck.Config{Domain: "clean.test"}},
		{name: "a domain without an SPF record is reported", cfg: dnscheck.Config{Domain: "spf-missing.test"},
			want: []dnscheck.Code{dnscheck.SPFMissing}},
		{name: "two SPF records are a permanent error", cfg: dnscheck.Config{Domain: "spf-multiple.test"},
			want: []dnscheck.Code{dnscheck.SPFMultiple}},
		{name: "one SPF record among unrelated TXT records is fine", cfg: dnscheck.Config{Domain: "spf-unrelated.test"}},
		{name: "ipv4: instead of ip4: is a syntax error that also fails the relay", cfg: dnscheck.Config{Domain: "spf-typo.test"},
			want: []dnscheck.Code{dnscheck.SPFSyntax, dnscheck.SPFRelayNotPermitted}, detail: `"ipv4:192.0.2.10"`},
		{name: "an SPF record split across strings is joined without separators", cfg: dnscheck.Config{Domain: "spf-split.test"}},
		{name: "an include chain over ten lookups is reported with its count", cfg: dnscheck.Config{Domain: "spf-lookups.test"},
			want: []dnscheck.Code{dnscheck.SPFTooManyLookups}, detail: "needs 11 DNS lookups"},
		{name: "an include loop is reported as over the lookup limit", cfg: dnscheck.Config{Domain: "spf-loop.test"},
			want: []dnscheck.Code{dnscheck.SPFTooManyLookups}, detail: "spf-loop.test -> _a.spf-loop.test -> spf-loop.test"},
		{name: "an include reached twice is not a loop and its typo is reported once", cfg: dnscheck.Config{Domain: "spf-dag.test"},
			want: []dnscheck.Code{dnscheck.SPFSyntax}, detail: "_c.spf-dag.test"},
		{name: "an include of a name without an SPF record is reported", cfg: dnscheck.Config{Domain: "spf-badinclude.test"},
			want: []dnscheck.Code{dnscheck.SPFSyntax}, detail: "_none.spf-badinclude.test, which has no SPF record"},
		{name: "an included name with two SPF records is reported", cfg: dnscheck.Config{Domain: "spf-incmulti.test"},
			want: []dnscheck.Code{dnscheck.SPFMultiple}, detail: "_two.spf-incmulti.test"},
		{name: "three void lookups draw a warning", cfg: dnscheck.Config{Domain: "spf-void.test"},
			want: []dnscheck.Code{dnscheck.SPFVoidLookups}, detail: "3 void lookups"},
		{name: "the ptr mechanism draws a warning", cfg: dnscheck.Config{Domain: "spf-ptr.test"},
			want: []dnscheck.Code{dnscheck.SPFPtr}},
		{name: "+all is an error", cfg: dnscheck.Config{Domain: "spf-allpass.test"},
			want: []dnscheck.Code{dnscheck.SPFAllPass}},
		{name: "?all draws a warning", cfg: dnscheck.Config{Domain: "spf-neutral.test"},
			want: []dnscheck.Code{dnscheck.SPFAllNeutral}},
		{name: "a record without all draws the same warning as ?all", cfg: dnscheck.Config{Domain: "spf-noall.test"},
			want: []dnscheck.Code{dnscheck.SPFAllNeutral}},
		{name: "~all is only information", cfg: dnscheck.Config{Domain: "spf-softfail.test"},
			want: []dnscheck.Code{dnscheck.SPFSoftfail}},
		{name: "a policy behind redirect= is followed", cfg: dnscheck.Config{Domain: "spf-redirect.test"}},
		{name: "a relay authorised only through mx passes", cfg: dnscheck.Config{Domain: "spf-mx.test"}},
		{name: "a relay the SPF record does not list is not permitted", cfg: dnscheck.Config{Domain: "relay-denied.test"},
			want: []dnscheck.Code{dnscheck.SPFRelayNotPermitted}, detail: "SPF result fail"},
		{name: "a missing DKIM key is reported", cfg: dnscheck.Config{Domain: "dkim-missing.test"},
			want: []dnscheck.Code{dnscheck.DKIMMissing}},
		{name: "a key record whose p= is not base64 is a syntax error", cfg: dnscheck.Config{Domain: "dkim-syntax.test"},
			want: []dnscheck.Code{dnscheck.DKIMSyntax}},
		{name: "an empty p= is a revoked key", cfg: dnscheck.Config{Domain: "dkim-revoked.test"},
			want: []dnscheck.Code{dnscheck.DKIMRevoked}},
		{name: "a published key that is not the configured one is a mismatch", cfg: dnscheck.Config{Domain: "dkim-mismatch.test"},
			want: []dnscheck.Code{dnscheck.DKIMKeyMismatch}},
		{name: "a 1024-bit key draws a weak-key warning", cfg: dnscheck.Config{Domain: "dkim-1024.test", PublicKey: loadKey(t, "rsa1024")},
			want: []dnscheck.Code{dnscheck.DKIMWeakKey}, detail: "1024-bit"},
		{name: "a 512-bit key is a weak-key error", cfg: dnscheck.Config{Domain: "dkim-512.test", PublicKey: loadKey(t, "rsa512")},
			want: []dnscheck.Code{dnscheck.DKIMWeakKey}, detail: "512-bit"},
		{name: "t=y draws a testing warning", cfg: dnscheck.Config{Domain: "dkim-testing.test"},
			want: []dnscheck.Code{dnscheck.DKIMTesting}},
		{name: "an Ed25519 key matching the configured private key is fine", cfg: dnscheck.Config{Domain: "dkim-ed25519.test", PublicKey: testEd25519()}},
		{name: "an Ed25519 key is not the configured RSA key", cfg: dnscheck.Config{Domain: "dkim-ed25519.test", PublicKey: rsa2048},
			want: []dnscheck.Code{dnscheck.DKIMKeyMismatch}, detail: "Ed25519"},
		{name: "a missing DMARC record draws a warning", cfg: dnscheck.Config{Domain: "dmarc-missing.test"},
			want: []dnscheck.Code{dnscheck.DMARCMissing}},
		{name: "two DMARC records are an error", cfg: dnscheck.Config{Domain: "dmarc-multiple.test"},
			want: []dnscheck.Code{dnscheck.DMARCMultiple}},
		{name: "an unknown DMARC policy is a syntax error", cfg: dnscheck.Config{Domain: "dmarc-syntax.test"},
			want: []dnscheck.Code{dnscheck.DMARCSyntax}, detail: "p=rejectt"},
		{name: "p=none draws a warning", cfg: dnscheck.Config{Domain: "dmarc-none.test"},
			want: []dnscheck.Code{dnscheck.DMARCPolicyNone}},
		{name: "a bounce subdomain does not align under strict aspf",
			cfg:  dnscheck.Config{Domain: "dmarc-strict.test", Bounce: "bounces.dmarc-strict.test"},
			want: []dnscheck.Code{dnscheck.DMARCSPFNotAligned}, detail: "aspf=s"},
		{name: "a bounce subdomain aligns under relaxed aspf",
			cfg: dnscheck.Config{Domain: "clean.test", Bounce: "bounces.clean.test"}},
		{name: "a signing subdomain does not align under strict adkim",
			cfg:  dnscheck.Config{Domain: "dmarc-adkim.test", SigningDomain: "mail.dmarc-adkim.test"},
			want: []dnscheck.Code{dnscheck.DMARCDKIMNotAligned}, detail: "adkim=s"},
		{name: "a signing domain of another organisation never aligns",
			cfg:  dnscheck.Config{Domain: "dmarc-missing.test", SigningDomain: "clean.test"},
			want: []dnscheck.Code{dnscheck.DMARCDKIMNotAligned, dnscheck.DMARCMissing}},
		{name: "a subdomain without a DMARC record falls back to the organisational domain's sp=",
			cfg:  dnscheck.Config{Domain: "shop.dmarc-org.test"},
			want: []dnscheck.Code{dnscheck.DMARCPolicyNone}, detail: "sp=none"},
		{name: "a relay without a PTR record draws a warning",
			cfg:  dnscheck.Config{Domain: "rdns.test", RelayIPs: []netip.Addr{netip.MustParseAddr("192.0.2.20")}},
			want: []dnscheck.Code{dnscheck.RDNSMismatch}, detail: "no PTR"},
		{name: "a relay whose PTR name points elsewhere draws a warning",
			cfg:  dnscheck.Config{Domain: "rdns.test", RelayIPs: []netip.Addr{netip.MustParseAddr("192.0.2.30")}},
			want: []dnscheck.Code{dnscheck.RDNSMismatch}, detail: "wrong.example.net"},
		{name: "an IPv6 relay with forward-confirmed reverse DNS is fine",
			cfg: dnscheck.Config{Domain: "rdns.test", RelayIPs: []netip.Addr{netip.MustParseAddr("2001:db8::10")}}},
		{name: "TXT answers too big for UDP are fetched over TCP", cfg: dnscheck.Config{Domain: "big-txt.test"}},
		{name: "the relay host's addresses are used when no relay IP is given",
			cfg: dnscheck.Config{Domain: "clean.test", RelayHost: "smtp.clean.test:587"}},
		{name: "a relay host that denies SPF is caught through its addresses",
			cfg:  dnscheck.Config{Domain: "relay-denied.test", RelayHost: "smtp.clean.test"},
			want: []dnscheck.Code{dnscheck.SPFRelayNotPermitted}},
		{name: "a whole bounce address is reduced to its domain",
			cfg: dnscheck.Config{Domain: "clean.test", Bounce: "bounces@bounces.clean.test"}},
		{name: "no selector skips DKIM", cfg: dnscheck.Config{Domain: "dkim-missing.test", Selector: "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Server = z.Addr
			cfg.Timeout = 2 * time.Second
			switch cfg.Selector {
			case "":
				cfg.Selector = "s1"
			case "-":
				cfg.Selector = ""
			}
			if cfg.PublicKey == nil {
				cfg.PublicKey = rsa2048
			}
			if cfg.RelayIPs == nil && cfg.RelayHost == "" {
				cfg.RelayIPs = []netip.Addr{relayIP}
			}
			rep, err := dnscheck.Check(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := rep.Codes()
			want := append([]dnscheck.Code(nil), tt.want...)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("codes = %v, want %v\n%s", got, want, text(t, rep))
			}
			if tt.detail != "" && !strings.Contains(rep.Findings[0].Detail, tt.detail) {
				t.Errorf("detail %q does not mention %q", rep.Findings[0].Detail, tt.detail)
			}
			for _, f := range rep.Findings {
				if f.Fix == "" || f.Detail == "" {
					t.Errorf("finding %s lacks a detail or a fix: %+v", f.Code, f)
				}
			}
			if len(want) == 0 && rep.HasErrors() {
				t.Errorf("HasErrors() = true for a report without findings")
			}
		})
	}
}

// text renders a report for failure messages.
func text(t *testing.T, rep *dnscheck.Report) string {
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCheckSeverities(t *testing.T) {
	z := startZoneServer(t)
	tests := []struct {
		name   string
		domain string
		key    string
		want   dnscheck.Severity
		errors bool
	}{
		{"a 1024-bit key is a warning and not an error", "dkim-1024.test", "rsa1024", dnscheck.SeverityWarning, false},
		{"a 512-bit key is an error", "dkim-512.test", "rsa512", dnscheck.SeverityError, true},
		{"~all is info and not an error", "spf-softfail.test", "rsa2048", dnscheck.SeverityInfo, false},
		{"+all is an error", "spf-allpass.test", "rsa2048", dnscheck.SeverityError, true},
		{"a missing DMARC record is a warning", "dmarc-missing.test", "rsa2048", dnscheck.SeverityWarning, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := dnscheck.Check(context.Background(), dnscheck.Config{
				Domain: tt.domain, Selector: "s1", PublicKey: loadKey(t, tt.key),
				RelayIPs: []netip.Addr{relayIP}, Server: z.Addr,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 1 || rep.Findings[0].Severity != tt.want {
				t.Fatalf("findings = %+v, want one %s", rep.Findings, tt.want)
			}
			if rep.HasErrors() != tt.errors {
				t.Errorf("HasErrors() = %v, want %v", rep.HasErrors(), tt.errors)
			}
		})
	}
}

func TestCheckUsesTCPForTruncatedAnswers(t *testing.T) {
	z := startZoneServer(t)
	rep, err := dnscheck.Check(context.Background(), dnscheck.Config{Domain: "big-txt.test", RelayIPs: []netip.Addr{relayIP}, Server: z.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rep.Codes(), dnscheck.SPFMissing) {
		t.Fatalf("the SPF record in the big answer was not found:\n%s", text(t, rep))
	}
	udp, tcp := z.asked("big-txt.test", dns.TypeTXT)
	if udp == 0 || tcp == 0 {
		t.Fatalf("TXT big-txt.test asked %d times over UDP and %d over TCP; want both", udp, tcp)
	}
}

func TestCheckNotes(t *testing.T) {
	z := startZoneServer(t)
	tests := []struct {
		name string
		cfg  dnscheck.Config
		note string
	}{
		{"relay IPs resolved from the relay host are noted",
			dnscheck.Config{Domain: "clean.test", RelayHost: "smtp.clean.test:587"}, "relay IPs taken from the SMTP relay host's addresses"},
		{"a loopback relay host is noted as not public",
			dnscheck.Config{Domain: "clean.test", RelayHost: "127.0.0.1:25"}, "relay address 127.0.0.1 is not public"},
		{"a missing relay is noted",
			dnscheck.Config{Domain: "clean.test"}, "no relay IP given"},
		{"the organisational DMARC fallback is noted",
			dnscheck.Config{Domain: "shop.dmarc-org.test"}, "_dmarc.dmarc-org.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Server = z.Addr
			rep, err := dnscheck.Check(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, tt.note) }) {
				t.Fatalf("notes %q lack %q", rep.Notes, tt.note)
			}
		})
	}
}

func TestCheckRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  dnscheck.Config
		want string
	}{
		{"an empty domain is refused", dnscheck.Config{}, "dnscheck: Domain is required"},
		{"a domain with an @ is refused", dnscheck.Config{Domain: "user@example.com"}, `dnscheck: Domain "user@example.com" is not a domain name`},
		{"a single-label domain is refused", dnscheck.Config{Domain: "localhost"}, `dnscheck: Domain "localhost" is not a domain name`},
		{"a bad bounce domain is refused", dnscheck.Config{Domain: "example.com", Bounce: "a b"}, `dnscheck: Bounce "a b" is not a domain name`},
		{"a selector with a semicolon is refused", dnscheck.Config{Domain: "example.com", Selector: "s1;x"}, `dnscheck: Selector "s1;x" is not a valid DKIM selector`},
		{"a public key of an unknown type is refused", dnscheck.Config{Domain: "example.com", PublicKey: "key"}, "dnscheck: PublicKey has unsupported type string"},
		{"an invalid relay IP is refused", dnscheck.Config{Domain: "example.com", RelayIPs: []netip.Addr{{}}}, "dnscheck: RelayIPs[0] is not a valid address"},
		{"a negative timeout is refused", dnscheck.Config{Domain: "example.com", Timeout: -time.Second}, "dnscheck: Timeout -1s is negative"},
		{"a server with an empty host is refused", dnscheck.Config{Domain: "example.com", Server: ":53"}, `dnscheck: DNS server ":53" has no host`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dnscheck.Check(context.Background(), tt.cfg)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckFailsWhenDNSDoesNotAnswer(t *testing.T) {
	// A UDP socket that reads nothing: every query times out.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	start := time.Now()
	_, err = dnscheck.Check(context.Background(), dnscheck.Config{Domain: "clean.test", Server: pc.LocalAddr().String(), Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "dnscheck: looking up TXT clean.test") {
		t.Fatalf("err = %v, want a lookup failure", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; the timeout was not applied", d)
	}
}

func TestReportJSONShape(t *testing.T) {
	z := startZoneServer(t)
	rep, err := dnscheck.Check(context.Background(), dnscheck.Config{Domain: "spf-softfail.test", RelayIPs: []netip.Addr{relayIP}, Server: z.Addr})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Domain   string           `json:"domain"`
		Findings []map[string]any `json:"findings"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Domain != "spf-softfail.test" || len(got.Findings) != 1 {
		t.Fatalf("JSON = %s", b)
	}
	f := got.Findings[0]
	if f["code"] != "SPF_SOFTFAIL" || f["severity"] != "info" || f["detail"] == "" {
		t.Fatalf("finding JSON = %v", f)
	}

	empty, err := json.Marshal(&dnscheck.Report{Domain: "x.test", Findings: []dnscheck.Finding{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"domain":"x.test","findings":[]}`; string(empty) != want {
		t.Errorf("empty report JSON = %s, want %s", empty, want)
	}
}

func TestWriteText(t *testing.T) {
	rep := &dnscheck.Report{
		Domain: "example.test",
		Notes:  []string{"a note"},
		Findings: []dnscheck.Finding{
			{Code: dnscheck.SPFAllPass, Severity: dnscheck.SeverityError, Detail: "d1.", Fix: "f1."},
			{Code: dnscheck.SPFSoftfail, Severity: dnscheck.SeverityInfo, Detail: "d2."},
		},
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "formguard doctor: example.test\n" +
		"note: a note\n" +
		"ERROR   SPF_ALL_PASS: d1. Fix: f1.\n" +
		"INFO    SPF_SOFTFAIL: d2.\n" +
		"FAIL: 1 error, 0 warnings, 1 info\n"
	if b.String() != want {
		t.Errorf("text =\n%s\nwant\n%s", b.String(), want)
	}
}
