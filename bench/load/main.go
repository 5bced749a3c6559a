// Command load measures formguard under real HTTP load over loopback.
//
// In one run it sends the same request mixes, at the same concurrency,
// from this process (keep-alive HTTP/1.1 connections, closed loop) to
// servers it starts as child processes of its own binary (-serve):
//
//   - bare:   net/http parsing the same form (r.ParseForm) and answering
//     200, the ceiling every other figure is a ratio to;
//   - memory: guard.Handler with its in-memory rate-limit store;
//   - redis:  guard.Handler with the Redis store, against a redis-server
//     the harness starts on a free loopback port (-redis).
//
// Each server is a separate process, started fresh for each mix, so its
// CPU time (/proc/PID/stat utime+stime over the measured window) and peak
// RSS (/proc/PID/status VmHWM) are its own. The run ends by itself.
//
//	cd bench && go run ./load [-duration 10s] [-conns 64] [-redis] [-rounds 3] [-profile DIR]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	var (
		serveKind = flag.String("serve", "", "internal: run as the server child of this `kind` (bare, memory, redis)")
		mixName   = flag.String("mix", "", "internal: the server child's mix")
		redisAddr = flag.String("redis-addr", "", "internal: the server child's Redis address")
		smtpAddr  = flag.String("smtp-addr", "", "internal: the server child's SMTP relay (the sink)")
		sinkMode  = flag.Bool("sink", false, "internal: run as the loopback SMTP sink child")
		spool     = flag.String("spool", "", "internal: the server child's outbox directory")
		cpuProf   = flag.String("cpuprofile", "", "internal: the server child writes a CPU profile of the measured window here")
		memProf   = flag.String("memprofile", "", "internal: the server child writes an allocs profile here at exit")
		logFile   = flag.String("logfile", "", "internal: the server child's decision log file (-log file)")

		duration = flag.Duration("duration", 10*time.Second, "measured window per mix and server")
		warmup   = flag.Duration("warmup", 2*time.Second, "unmeasured load before each window")
		conns    = flag.Int("conns", 64, "concurrent keep-alive connections")
		rounds   = flag.Int("rounds", 1, "measure every server this many times, interleaved, and report the median round")
		clients  = flag.Int("clients", 100_000, "distinct clients in the distinct mix (at most 131072)")
		useRedis = flag.Bool("redis", false, "also measure guard with the Redis store (starts redis-server)")
		redisTO  = flag.Duration("redis-timeout", 0, "the Redis store's per-call timeout (0: the store's default)")
		mixList  = flag.String("mixes", "reject,limited,honeypot,banned,distinct,accept,accept-ed25519,e2e", "comma-separated mixes to run")
		logMode  = flag.String("log", "file", "guard decision log: file (JSON lines to a file in the work directory, as deployed), discard (format, drop), stderr, off")
		profDir  = flag.String("profile", "", "write CPU and allocs profiles of every server to this directory")
		workDir  = flag.String("dir", "", "directory for outbox spools (default: a new temporary directory, removed after)")
		rsaDur   = flag.Duration("rsa", 3*time.Second, "measure the machine's RSA-2048 signing ceiling for this long (0: skip)")
		outFile  = flag.String("out", "", "also write the markdown report to this file")
	)
	flag.Parse()

	if *sinkMode {
		if err := sink(); err != nil {
			fatalf("sink: %v", err)
		}
		return
	}
	if *serveKind != "" {
		m, ok := mixByName(*mixName)
		if !ok {
			fatalf("unknown mix %q", *mixName)
		}
		err := serve(serveOpts{kind: *serveKind, mix: m, redisAddr: *redisAddr, smtpAddr: *smtpAddr, spool: *spool,
			redisTO: *redisTO, logMode: *logMode, logFile: *logFile, cpuProfile: *cpuProf, memProfile: *memProf})
		if err != nil {
			fatalf("serve %s: %v", *serveKind, err)
		}
		return
	}

	cfg := runConfig{
		duration: *duration, warmup: *warmup, conns: *conns, rounds: *rounds, clients: *clients,
		redis: *useRedis, redisTO: *redisTO, logMode: *logMode, profDir: *profDir, workDir: *workDir, rsa: *rsaDur,
	}
	for _, n := range strings.Split(*mixList, ",") {
		m, ok := mixByName(strings.TrimSpace(n))
		if !ok {
			fatalf("unknown mix %q", n)
		}
		cfg.mixes = append(cfg.mixes, m)
	}
	switch {
	case cfg.conns < 1 || cfg.conns > 10_000:
		fatalf("-conns %d: want 1..10000", cfg.conns)
	case cfg.rounds < 1 || cfg.rounds > 100:
		fatalf("-rounds %d: want 1..100", cfg.rounds)
	case cfg.clients < 1 || cfg.clients > 1<<17:
		fatalf("-clients %d: want 1..131072", cfg.clients)
	case cfg.duration <= 0 || cfg.duration > time.Hour:
		fatalf("-duration %s: want (0, 1h]", cfg.duration)
	case cfg.warmup < 0 || cfg.warmup > time.Hour:
		fatalf("-warmup %s: want [0, 1h]", cfg.warmup)
	}
	rep, err := run(cfg)
	if err != nil {
		fatalf("%v", err)
	}
	md := rep.markdown()
	fmt.Print(md)
	if *outFile != "" {
		if err := os.WriteFile(*outFile, []byte(md), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", a...)
	os.Exit(1)
}
