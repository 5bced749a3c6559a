// Command formguard-attack is formguard's proof under attack. It builds and
// starts the real service against a loopback SMTP sink (and a real
// redis-server with -redis), sends a fixed, seeded set of attack classes
// from many simulated clients, audits every message the sink received and
// prints a markdown table per class. It exits 1 on any violation or lost
// legitimate submission.
//
//	formguard-attack [-redis] [-seed N] [-short] [-classes a,b]
//	formguard-attack -fault redis-killed|smtp-451|sigkill|outbox-unwritable [-short]
//	formguard-attack -fault replay-fill|captcha-budget|limiter-full|offence-flood|log-flood [-short] [-redis]
//	formguard-attack -soak 10m [-redis]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/formguard/formguard/internal/attack"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// cli is the command line.
type cli struct {
	opt     attack.Options
	classes string
	fault   string
	soak    time.Duration
	quiet   bool
	md      string
	trace   string
}

func parseFlags(args []string, stderr io.Writer) (*cli, bool) {
	c := &cli{}
	fs := flag.NewFlagSet("formguard-attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&c.opt.Redis, "redis", false, "run the service against a real redis-server (rate limits, replay cache, outbox)")
	fs.Uint64Var(&c.opt.Seed, "seed", 1, "seed for every random choice; the same seed sends the same requests")
	fs.BoolVar(&c.opt.Short, "short", false, "one encoding per variant and shorter scenarios (CI)")
	fs.StringVar(&c.classes, "classes", "", "comma-separated attack classes to run (default all: "+strings.Join(attack.ClassNames(), ", ")+")")
	fs.StringVar(&c.fault, "fault", "", "run a fault-injection scenario instead: "+strings.Join(attack.FaultNames(), ", "))
	fs.DurationVar(&c.soak, "soak", 0, "run steady mixed traffic for this long instead, watching RSS, goroutines and open files")
	fs.StringVar(&c.opt.Bin, "bin", "", "use this formguard binary instead of building ./cmd/formguard")
	fs.BoolVar(&c.opt.Keep, "keep", false, "keep the work directory (config, service log, outbox)")
	fs.StringVar(&c.opt.Dir, "dir", "", "work directory (default a new temporary one)")
	fs.BoolVar(&c.quiet, "q", false, "no progress lines on stderr")
	fs.StringVar(&c.md, "md", "", "also write the markdown report to this file")
	fs.BoolVar(&c.opt.StrictOnce, "strict-once", false, "sigkill: fail on any redelivery, even a same-Message-ID copy whose relay acceptance raced the kill")
	fs.StringVar(&c.trace, "trace", "", "write one line per request (class, status, client) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "formguard-attack: unexpected arguments %q\n", fs.Args())
		return nil, false
	}
	c.opt.Log = stderr
	if c.quiet {
		c.opt.Log = io.Discard
	}
	return c, true
}

func run(args []string, stdout, stderr io.Writer) int {
	c, ok := parseFlags(args, stderr)
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 2
		}
		defer f.Close()
		c.opt.Trace = f
	}
	start := time.Now()
	title, md, ok, code := c.execute(ctx, stderr)
	if code != 0 {
		return code
	}
	verdict := "PASS: no violation"
	if !ok {
		verdict = "FAIL"
	}
	out := fmt.Sprintf("## %s\n\n%s\n%s (%s)\n", title, md, verdict, time.Since(start).Round(time.Second))
	fmt.Fprint(stdout, out)
	if c.md != "" {
		if err := os.WriteFile(c.md, []byte(out), 0o644); err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
	}
	if !ok {
		return 1
	}
	return 0
}

// execute runs what the flags ask for and returns the report's title and
// body and whether it passed, or a non-zero exit code when it could not
// run.
func (c *cli) execute(ctx context.Context, stderr io.Writer) (title, md string, ok bool, code int) {
	fail := func(err error, code int) (string, string, bool, int) {
		fmt.Fprintln(stderr, "formguard-attack:", err)
		return "", "", false, code
	}
	switch {
	case c.fault != "":
		res, err := attack.RunFault(ctx, c.fault, c.opt)
		if err != nil {
			return fail(err, 1)
		}
		return "Fault scenario " + c.fault, res.Markdown(), res.OK(), 0
	case c.soak > 0:
		res, err := attack.Soak(ctx, c.soak, c.opt)
		if err != nil {
			return fail(err, 1)
		}
		return fmt.Sprintf("Soak %s", c.soak), res.Markdown(), res.OK(), 0
	}
	cs, err := attack.Select(c.classes)
	if err != nil {
		return fail(err, 2)
	}
	e, err := attack.Setup(ctx, c.opt)
	if err != nil {
		return fail(err, 1)
	}
	defer e.Close()
	rep, err := e.Attack(ctx, cs)
	if err != nil {
		return fail(err, 1)
	}
	if c.opt.Keep {
		fmt.Fprintln(stderr, "work directory kept:", e.Dir)
	}
	store := "in-memory"
	if c.opt.Redis {
		store = "Redis"
	}
	mode := "full"
	if c.opt.Short {
		mode = "short"
	}
	return fmt.Sprintf("Attack run (seed %d, %s, %s limits)", c.opt.Seed, mode, store), rep.Markdown(), rep.OK(), 0
}
