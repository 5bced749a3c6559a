package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/formguard/formguard/internal/config"
	"github.com/formguard/formguard/mailer"
)

func keygen(args []string, e env) int {
	fs := newFlags("dkim-keygen", e)
	alg := fs.String("alg", "rsa", "key algorithm: rsa or ed25519 (RFC 8463)")
	bits := fs.Int("bits", mailer.DefaultRSABits, "RSA key size (2048..4096)")
	selector := fs.String("selector", config.DefaultDKIMSelector, "DKIM selector")
	domain := fs.String("domain", "", "signing domain, i.e. site.domain (required)")
	out := fs.String("out", "", "file to write the PEM private key to, mode 0600 (required; never overwritten)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	var missing []string
	if *domain == "" {
		missing = append(missing, "-domain")
	}
	if *out == "" {
		missing = append(missing, "-out")
	}
	if len(missing) > 0 {
		fmt.Fprintf(e.stderr, "formguard dkim-keygen: %s required\n", strings.Join(missing, " and "))
		fs.Usage()
		return exitUsage
	}
	b := *bits
	if *alg == "ed25519" && !flagSet(fs, "bits") {
		b = 0
	}
	pemBytes, err := mailer.GenerateKey(*alg, b)
	if err != nil {
		fmt.Fprintln(e.stderr, "formguard dkim-keygen:", err)
		return exitUsage
	}
	signer, err := mailer.ParseKey(pemBytes)
	if err != nil {
		fmt.Fprintln(e.stderr, "formguard dkim-keygen:", err)
		return exitFailure
	}
	name, txt, err := mailer.DNSRecord(*selector, *domain, signer.Public())
	if err != nil {
		fmt.Fprintln(e.stderr, "formguard dkim-keygen:", err)
		return exitUsage
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			fmt.Fprintf(e.stderr, "formguard dkim-keygen: %s exists; refusing to overwrite a key (remove it first)\n", *out)
		} else {
			fmt.Fprintln(e.stderr, "formguard dkim-keygen:", err)
		}
		return exitFailure
	}
	if _, err = f.Write(pemBytes); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(*out)
		fmt.Fprintln(e.stderr, "formguard dkim-keygen:", err)
		return exitFailure
	}
	parts := mailer.SplitTXT(txt)
	quoted := make([]string, len(parts))
	for i, p := range parts {
		quoted[i] = `"` + p + `"`
	}
	fmt.Fprintf(e.stdout, "Wrote the %s DKIM private key to %s (mode 0600). Publish this DNS TXT record:\n\n", *alg, *out)
	fmt.Fprintf(e.stdout, "%s. IN TXT ( %s )\n\n", name, strings.Join(quoted, " "))
	fmt.Fprintf(e.stdout, "Name:  %s\nValue: %s\n\n", name, txt)
	fmt.Fprintf(e.stdout, "Then set mail.dkim: {selector: %s, key_file: %s} and run `formguard doctor`.\n", *selector, *out)
	return exitOK
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}
