package dnscheck_test

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/formguard/formguard/mailer/dnscheck"
)

func TestParseSPF(t *testing.T) {
	tests := []struct {
		name    string
		record  string
		terms   int    // valid terms returned
		badTerm string // a term the error must name; empty: no error
	}{
		{name: "a plain record parses", record: "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com mx a -all", terms: 6},
		{name: "names and version are case-insensitive", record: "V=SPF1 IP4:192.0.2.1 MX:Example.COM ~ALL", terms: 3},
		{name: "runs of spaces separate terms", record: "v=spf1   a    -all", terms: 2},
		{name: "an empty record is valid", record: "v=spf1", terms: 0},
		{name: "dual CIDR lengths on a and mx parse", record: "v=spf1 a/24 mx//64 a:example.com/24//64 -all", terms: 4},
		{name: "macros in exists parse", record: "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", terms: 2},
		{name: "exp= and redirect= parse", record: "v=spf1 exp=explain.%{d} redirect=_spf.example.com", terms: 2},
		{name: "ipv4: is an unknown mechanism", record: "v=spf1 ipv4:192.0.2.1 -all", terms: 1, badTerm: "ipv4:192.0.2.1"},
		{name: "a misspelt modifier is reported", record: "v=spf1 redirct=_spf.example.com", terms: 0, badTerm: "redirct=_spf.example.com"},
		{name: "an IPv4 prefix over 32 is invalid", record: "v=spf1 ip4:192.0.2.0/33 -all", terms: 1, badTerm: "ip4:192.0.2.0/33"},
		{name: "an IPv6 address in ip4 is invalid", record: "v=spf1 ip4:2001:db8::1", terms: 0, badTerm: "ip4:2001:db8::1"},
		{name: "an IPv4 address in ip6 is invalid", record: "v=spf1 ip6:192.0.2.1", terms: 0, badTerm: "ip6:192.0.2.1"},
		{name: "a prefix with a leading zero is invalid", record: "v=spf1 a/024", terms: 0, badTerm: "a/024"},
		{name: "include without a domain is invalid", record: "v=spf1 include: -all", terms: 1, badTerm: "include:"},
		{name: "all with an argument is invalid", record: "v=spf1 all:example.com", terms: 0, badTerm: "all:example.com"},
		{name: "a domain with a numeric top label is invalid", record: "v=spf1 a:192.0.2.1", terms: 0, badTerm: "a:192.0.2.1"},
		{name: "an unknown macro letter is invalid", record: "v=spf1 exists:%{z}.example.com", terms: 0, badTerm: "exists:%{z}.example.com"},
		{name: "two redirects are invalid", record: "v=spf1 redirect=a.example.com redirect=b.example.com", terms: 1, badTerm: "redirect=b.example.com"},
		{name: "every bad term is reported, not only the first", record: "v=spf1 ipv4:192.0.2.1 ipv6:2001:db8::1 -all", terms: 1, badTerm: "ipv6:2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := dnscheck.ParseSPF(tt.record)
			if rec == nil {
				t.Fatalf("no record: %v", err)
			}
			if len(rec.Terms) != tt.terms {
				t.Errorf("%d terms, want %d: %+v", len(rec.Terms), tt.terms, rec.Terms)
			}
			if tt.badTerm == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var te *dnscheck.SPFTermError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), `"`+tt.badTerm+`"`) {
				t.Fatalf("err = %v, want one naming %q", err, tt.badTerm)
			}
		})
	}
}

func TestParseSPFRejectsOtherRecords(t *testing.T) {
	for _, rec := range []string{"", "v=spf10 -all", "spf1 -all", "google-site-verification=x", " v=spf1 -all"} {
		if _, err := dnscheck.ParseSPF(rec); err == nil {
			t.Errorf("ParseSPF(%q) succeeded", rec)
		}
		if dnscheck.IsSPF(rec) {
			t.Errorf("IsSPF(%q) = true", rec)
		}
	}
}

func TestParseSPFTerms(t *testing.T) {
	rec, err := dnscheck.ParseSPF("v=spf1 ~a:mail.example.com/24//64 -ALL")
	if err != nil {
		t.Fatal(err)
	}
	a := rec.Terms[0]
	if a.Qualifier != '~' || a.Name != "a" || a.Value != "mail.example.com" || a.Prefix4 != 24 || a.Prefix6 != 64 {
		t.Errorf("a term = %+v", a)
	}
	all, ok := rec.All()
	if !ok || all.Qualifier != '-' || all.Name != "all" {
		t.Errorf("All() = %+v, %v", all, ok)
	}
}

func TestParseDKIMKey(t *testing.T) {
	rsaKey := loadKey(t, "rsa2048").(*rsa.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	p := base64.StdEncoding.EncodeToString(spki)
	pkcs1 := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(rsaKey))
	ed := base64.StdEncoding.EncodeToString(testEd25519().Public().(ed25519.PublicKey))
	tests := []struct {
		name    string
		record  string
		check   func(*dnscheck.DKIMKey) bool
		wantErr string
	}{
		{name: "an RSA key parses with its size", record: "v=DKIM1; k=rsa; p=" + p,
			check: func(k *dnscheck.DKIMKey) bool { return k.Bits == 2048 && rsaKey.Equal(k.PublicKey) }},
		{name: "k= defaults to rsa", record: "p=" + p,
			check: func(k *dnscheck.DKIMKey) bool { return k.KeyType == "rsa" && k.Bits == 2048 }},
		{name: "a bare PKCS#1 RSA key is accepted", record: "v=DKIM1; p=" + pkcs1,
			check: func(k *dnscheck.DKIMKey) bool { return rsaKey.Equal(k.PublicKey) }},
		{name: "an Ed25519 key parses", record: "v=DKIM1; k=ed25519; p=" + ed,
			check: func(k *dnscheck.DKIMKey) bool { return k.KeyType == "ed25519" && k.Bits == 256 }},
		{name: "whitespace inside p= is ignored", record: "v=DKIM1; p=" + p[:100] + " \t " + p[100:],
			check: func(k *dnscheck.DKIMKey) bool { return k.Bits == 2048 }},
		{name: "an empty p= is a revoked key", record: "v=DKIM1; p=",
			check: func(k *dnscheck.DKIMKey) bool { return k.Revoked && k.PublicKey == nil }},
		{name: "t=y:s sets testing and strict", record: "v=DKIM1; t=y:s; h=sha256; s=email; n=hi; p=" + p,
			check: func(k *dnscheck.DKIMKey) bool {
				return k.Testing && k.Strict && k.HashAlgs[0] == "sha256" && k.Services[0] == "email" && k.Notes == "hi"
			}},
		{name: "unknown tags and flags are ignored", record: "v=DKIM1; x=1; t=q; p=" + p,
			check: func(k *dnscheck.DKIMKey) bool { return !k.Testing }},
		{name: "a missing p= is an error", record: "v=DKIM1; k=rsa", wantErr: "no p= tag"},
		{name: "v= not first is an error", record: "k=rsa; v=DKIM1; p=" + p, wantErr: "v= is not the first tag"},
		{name: "another version is an error", record: "v=DKIM2; p=" + p, wantErr: `version "DKIM2"`},
		{name: "an unknown key type is an error", record: "v=DKIM1; k=dsa; p=" + p, wantErr: "unknown key type k=dsa"},
		{name: "bad base64 is an error", record: "v=DKIM1; p=not*base64", wantErr: "not valid base64"},
		{name: "a short Ed25519 key is an error", record: "k=ed25519; p=AAAA", wantErr: "Ed25519 key is 3 bytes"},
		{name: "an Ed25519 key labelled rsa is an error", record: "k=rsa; p=" + ed, wantErr: "not an RSA public key"},
		{name: "a repeated tag is an error", record: "p=" + p + "; p=" + p, wantErr: "tag p appears twice"},
		{name: "a tag without = is an error", record: "v=DKIM1; rsa; p=" + p, wantErr: `has no "="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := dnscheck.ParseDKIMKey(tt.record)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "dnscheck: ") {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(k) {
				t.Fatalf("unexpected key %+v", k)
			}
		})
	}
}

func TestParseDMARC(t *testing.T) {
	tests := []struct {
		name    string
		record  string
		check   func(*dnscheck.DMARCRecord) bool
		wantErr string
	}{
		{name: "a minimal record gets the defaults", record: "v=DMARC1; p=reject",
			check: func(r *dnscheck.DMARCRecord) bool {
				return r.Policy == "reject" && r.ADKIM == "r" && r.ASPF == "r" && r.Percent == 100 && r.Interval == 86400
			}},
		{name: "every tag is read", record: "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=50; rua=mailto:a@example.com,mailto:b@example.com!10m; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600;",
			check: func(r *dnscheck.DMARCRecord) bool {
				return r.Policy == "quarantine" && r.SubdomainPolicy == "none" && r.ADKIM == "s" && r.ASPF == "s" &&
					r.Percent == 50 && len(r.RUA) == 2 && r.RUA[1] == "mailto:b@example.com" && len(r.RUF) == 1 && r.Interval == 3600
			}},
		{name: "unknown tags are ignored", record: "v=DMARC1; p=none; np=reject; psd=n",
			check: func(r *dnscheck.DMARCRecord) bool { return r.Policy == "none" }},
		{name: "spaces around tags are allowed", record: " v = DMARC1 ;  p = reject ",
			check: func(r *dnscheck.DMARCRecord) bool { return r.Policy == "reject" }},
		{name: "a lower-case version is an error", record: "v=dmarc1; p=reject", wantErr: `version "dmarc1"`},
		{name: "v= not first is an error", record: "p=reject; v=DMARC1", wantErr: "must be the first tag"},
		{name: "a missing p= is an error", record: "v=DMARC1; rua=mailto:a@example.com", wantErr: "no p= tag"},
		{name: "an unknown policy is an error", record: "v=DMARC1; p=rejectt", wantErr: "p=rejectt is invalid"},
		{name: "an alignment mode other than r or s is an error", record: "v=DMARC1; p=reject; aspf=strict", wantErr: "aspf=strict is invalid"},
		{name: "pct over 100 is an error", record: "v=DMARC1; p=reject; pct=101", wantErr: "pct=101 is invalid"},
		{name: "a bare address in rua is an error", record: "v=DMARC1; p=reject; rua=dmarc@example.com", wantErr: "rua=dmarc@example.com is invalid"},
		{name: "a bad report size is an error", record: "v=DMARC1; p=reject; rua=mailto:a@example.com!big", wantErr: "rua="},
		{name: "an unknown failure option is an error", record: "v=DMARC1; p=reject; fo=2", wantErr: "fo=2 is invalid"},
		{name: "a repeated tag is an error", record: "v=DMARC1; p=reject; p=none", wantErr: "tag p appears twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := dnscheck.ParseDMARC(tt.record)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(r) {
				t.Fatalf("unexpected record %+v", r)
			}
		})
	}
}

func TestIsDMARC(t *testing.T) {
	for rec, want := range map[string]bool{
		"v=DMARC1; p=reject": true,
		"v=dmarc1; p=reject": true, // reported as a syntax error, not as missing
		"v = DMARC1":         true,
		"v=spf1 -all":        false,
		"p=reject; v=DMARC1": false,
		"":                   false,
	} {
		if got := dnscheck.IsDMARC(rec); got != want {
			t.Errorf("IsDMARC(%q) = %v, want %v", rec, got, want)
		}
	}
}

func TestAlignment(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		mode string
		want bool
	}{
		{"a subdomain aligns under relaxed", "bounces.example.com", "example.com", dnscheck.AlignRelaxed, true},
		{"a subdomain does not align under strict", "bounces.example.com", "example.com", dnscheck.AlignStrict, false},
		{"the same domain aligns under strict whatever the case", "Example.COM.", "example.com", dnscheck.AlignStrict, true},
		{"siblings under a multi-label public suffix align under relaxed", "a.example.co.uk", "b.example.co.uk", dnscheck.AlignRelaxed, true},
		{"two registrants of one public suffix do not align", "example.co.uk", "other.co.uk", dnscheck.AlignRelaxed, false},
		{"different organisations do not align", "example.com", "example.net", dnscheck.AlignRelaxed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dnscheck.Aligned(tt.a, tt.b, tt.mode); got != tt.want {
				t.Fatalf("Aligned(%q, %q, %q) = %v, want %v", tt.a, tt.b, tt.mode, got, tt.want)
			}
		})
	}
	for in, want := range map[string]string{
		"mail.example.co.uk": "example.co.uk",
		"a.b.clean.test":     "clean.test",
		"co.uk":              "co.uk",
	} {
		if got := dnscheck.OrganizationalDomain(in); got != want {
			t.Errorf("OrganizationalDomain(%q) = %q, want %q", in, got, want)
		}
	}
}
