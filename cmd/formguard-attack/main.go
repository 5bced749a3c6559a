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

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("formguard-attack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useRedis := fs.Bool("redis", false, "run the service against a real redis-server (rate limits, replay cache, outbox)")
	seed := fs.Uint64("seed", 1, "seed for every random choice; the same seed sends the same requests")
	short := fs.Bool("short", false, "one encoding per variant and shorter scenarios (CI)")
	classes := fs.String("classes", "", "comma-separated attack classes to run (default all: "+strings.Join(attack.ClassNames(), ", ")+")")
	fault := fs.String("fault", "", "run a fault-injection scenario instead: "+strings.Join(attack.FaultNames(), ", "))
	soak := fs.Duration("soak", 0, "run steady mixed traffic for this long instead, watching RSS, goroutines and open files")
	bin := fs.String("bin", "", "use this formguard binary instead of building ./cmd/formguard")
	keep := fs.Bool("keep", false, "keep the work directory (config, service log, outbox)")
	dir := fs.String("dir", "", "work directory (default a new temporary one)")
	quiet := fs.Bool("q", false, "no progress lines on stderr")
	mdOut := fs.String("md", "", "also write the markdown report to this file")
	strictOnce := fs.Bool("strict-once", false, "sigkill: fail on any redelivery, even a same-Message-ID copy whose relay acceptance raced the kill")
	trace := fs.String("trace", "", "write one line per request (class, status, client) to this file")
	noCapacity := fs.Bool("no-capacity-keys", false, "leave limits.memory_keys and limits.replay_entries out of the service config (for a binary that predates them)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "formguard-attack: unexpected arguments %q\n", fs.Args())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := attack.Options{Seed: *seed, Short: *short, Redis: *useRedis, Bin: *bin, Keep: *keep, Dir: *dir, Log: stderr, StrictOnce: *strictOnce, NoCapacityKeys: *noCapacity}
	if *quiet {
		opt.Log = io.Discard
	}
	if *trace != "" {
		f, err := os.Create(*trace)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 2
		}
		defer f.Close()
		opt.Trace = f
	}
	start := time.Now()
	var (
		title string
		md    string
		ok    bool
	)
	switch {
	case *fault != "":
		res, err := attack.RunFault(ctx, *fault, opt)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
		title, md, ok = "Fault scenario "+*fault, res.Markdown(), res.OK()
	case *soak > 0:
		res, err := attack.Soak(ctx, *soak, opt)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
		title, md, ok = fmt.Sprintf("Soak %s", *soak), res.Markdown(), res.OK()
	default:
		cs, err := attack.Select(*classes)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 2
		}
		e, err := attack.Setup(ctx, opt)
		if err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
		rep, err := e.Attack(ctx, cs)
		if err != nil {
			e.Close()
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
		if *keep {
			fmt.Fprintln(stderr, "work directory kept:", e.Dir)
		}
		e.Close()
		store := "in-memory"
		if *useRedis {
			store = "Redis"
		}
		mode := "full"
		if *short {
			mode = "short"
		}
		title = fmt.Sprintf("Attack run (seed %d, %s, %s limits)", *seed, mode, store)
		md, ok = rep.Markdown(), rep.OK()
	}
	verdict := "PASS: no violation"
	if !ok {
		verdict = "FAIL"
	}
	out := fmt.Sprintf("## %s\n\n%s\n%s (%s)\n", title, md, verdict, time.Since(start).Round(time.Second))
	fmt.Fprint(stdout, out)
	if *mdOut != "" {
		if err := os.WriteFile(*mdOut, []byte(out), 0o644); err != nil {
			fmt.Fprintln(stderr, "formguard-attack:", err)
			return 1
		}
	}
	if !ok {
		return 1
	}
	return 0
}
