package dnscheck_test

import (
	"strings"
	"testing"

	"github.com/formguard/formguard/mailer/dnscheck"
)

func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.com mx a -all",
		"v=spf1 ipv4:192.0.2.1 -all",
		"v=spf1 a/24//64 mx:example.com//128 ptr ?all",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} redirect=_spf.example.com exp=%{d}",
		"v=spf1 redirect=a redirect=b",
		"v=spf1 %{",
		"v=spf1 ip4:1.2.3.4/033",
		"v=spf1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		rec, err := dnscheck.ParseSPF(record)
		if !dnscheck.IsSPF(record) {
			if err == nil {
				t.Fatalf("ParseSPF accepted a non-SPF record %q", record)
			}
			return
		}
		if rec == nil {
			t.Fatalf("no record for %q", record)
		}
		// The valid terms, written back, must parse again to the same
		// terms without error.
		raws := []string{"v=spf1"}
		for _, term := range rec.Terms {
			if term.Raw == "" || strings.Contains(term.Raw, " ") {
				t.Fatalf("term %+v has a bad Raw", term)
			}
			raws = append(raws, term.Raw)
		}
		again, err := dnscheck.ParseSPF(strings.Join(raws, " "))
		if err != nil || len(again.Terms) != len(rec.Terms) {
			t.Fatalf("valid terms %q do not reparse: %v", raws, err)
		}
		for i := range again.Terms {
			if again.Terms[i] != rec.Terms[i] {
				t.Fatalf("term %d reparsed as %+v, was %+v", i, again.Terms[i], rec.Terms[i])
			}
		}
	})
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject",
		"v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=50; rua=mailto:a@example.com!10m; fo=1:d; rf=afrf; ri=3600;",
		"v=dmarc1; p=none",
		"p=reject; v=DMARC1",
		"v=DMARC1; p=reject; p=none",
		"v=DMARC1;;p=reject",
		"v=DMARC1; p=reject; rua=mailto:a@example.com!",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		r, err := dnscheck.ParseDMARC(record)
		if err != nil {
			if r != nil || !strings.HasPrefix(err.Error(), "dnscheck: ") {
				t.Fatalf("error %v came with a record or without the package prefix", err)
			}
			return
		}
		switch r.Policy {
		case "none", "quarantine", "reject":
		default:
			t.Fatalf("accepted policy %q", r.Policy)
		}
		if r.Percent < 0 || r.Percent > 100 {
			t.Fatalf("accepted pct %d", r.Percent)
		}
		if (r.ADKIM != "r" && r.ADKIM != "s") || (r.ASPF != "r" && r.ASPF != "s") {
			t.Fatalf("accepted alignment %q/%q", r.ADKIM, r.ASPF)
		}
		if !dnscheck.IsDMARC(record) {
			t.Fatalf("ParseDMARC accepted %q, which IsDMARC refuses", record)
		}
	})
}

func FuzzParseDKIMKey(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDSXNr7tcCNMybr8tfP+zAnAgSyKh06kVMJ2gcLzWNvP+wFX5pU0wQ8fz1+geF8wkd19WlN3e00YSJl1hCRQv4byCkPZunoixFh0jg0qhWMfsHU2+SWXfqaHYXUqTq8vE/ThLEepL5Axp5KKJCe9osN+1XN3qIr7PnXXr7mko/1fwIDAQAB",
		"v=DKIM1; k=ed25519; p=Vxb7EmOLWug6yJSoj+DKHQWV/Z5Im2Tl4xDMbTOaJNA=",
		"v=DKIM1; p=",
		"v=DKIM1; t=y:s; h=sha256; s=email; p=AAAA",
		"k=rsa; v=DKIM1; p=",
		"p=;p=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, record string) {
		k, err := dnscheck.ParseDKIMKey(record)
		if err != nil {
			return
		}
		if k.Revoked != (k.PublicKey == nil) {
			t.Fatalf("Revoked = %v with key %v", k.Revoked, k.PublicKey)
		}
		if !k.Revoked && k.Bits <= 0 {
			t.Fatalf("a key with %d bits", k.Bits)
		}
		if k.KeyType != "rsa" && k.KeyType != "ed25519" {
			t.Fatalf("key type %q", k.KeyType)
		}
	})
}
