package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
)

type runConfig struct {
	mixes                     []mix
	duration, warmup          time.Duration
	conns, clients            int
	redis                     bool
	redisTO                   time.Duration
	logMode, profDir, workDir string
	rsa                       time.Duration
	rounds                    int
}

// measurement is one (mix, server) cell of the report.
type measurement struct {
	mix    mix
	server string
	round  int
	rates  []float64 // req/s of every round of this cell (set on the median)
	// roundsLost counts the other rounds whose outbox missed a 2xx answer.
	roundsLost int

	res        loadResult     // the measured window
	warm       map[int]uint64 // statuses during warm-up
	cpu        time.Duration  // server process CPU over the window
	redisCPU   time.Duration  // redis-server CPU over the window
	genCPU     time.Duration  // this process (the load generator) over the window
	othersFrac float64        // CPU used by other processes, as a fraction of the machine
	hwmKB      int64          // server peak RSS
	redisRSSKB int64
	child      childStats
	spoolFiles int           // messages in the outbox after the run (-1: not an outbox mix)
	sink       *sinkStats    // the SMTP sink's counts (e2e only)
	sinkCPU    time.Duration // the sink's CPU over the window
	logBytes   int64         // decision log written over warm-up and window (-1: not to a file)
	logLines   int64
}

// countLines returns the size and line count of the file at path.
func countLines(path string) (size, lines int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	return int64(len(b)), int64(bytes.Count(b, []byte{'\n'})), nil
}

type report struct {
	cfg                   runConfig
	started               time.Time
	ms                    []*measurement
	rsa                   float64       // RSA-2048 PKCS#1 v1.5 signatures per second, all cores
	rsaCPU                time.Duration // CPU time per signature (noise-robust)
	rsaErr                error
	loadBefore, loadAfter string
}

func run(cfg runConfig) (*report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rep := &report{cfg: cfg, started: time.Now(), loadBefore: loadAvg()}
	work := cfg.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "formguard-load-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
	}
	if cfg.profDir != "" {
		if err := os.MkdirAll(cfg.profDir, 0o755); err != nil {
			return nil, err
		}
	}
	servers := []string{"bare", "memory"}
	var rs *redisServer
	if cfg.redis {
		if rs, err = startRedis(); err != nil {
			return nil, err
		}
		defer rs.stop()
		servers = append(servers, "redis")
	}
	for _, m := range cfg.mixes {
		// Rounds interleave the servers, so a change in the machine's load
		// from other tenants hits every server alike; the report keeps
		// each server's median round.
		runs := map[string][]*measurement{}
		for round := 1; round <= cfg.rounds; round++ {
			for _, s := range servers {
				fmt.Fprintf(os.Stderr, "load: %s / %s (round %d/%d): %s warm-up, %s measured, %d connections (load %s)\n",
					m.name, s, round, cfg.rounds, cfg.warmup, cfg.duration, cfg.conns, loadAvg())
				if rs != nil {
					if err := rs.command("FLUSHALL"); err != nil {
						return nil, err
					}
				}
				ms, err := measure(self, cfg, m, s, rs, work, round)
				if err != nil {
					return nil, fmt.Errorf("%s / %s: %w", m.name, s, err)
				}
				runs[s] = append(runs[s], ms)
			}
		}
		for _, s := range servers {
			rep.ms = append(rep.ms, median(runs[s]))
		}
	}
	if cfg.rsa > 0 {
		fmt.Fprintf(os.Stderr, "load: RSA-2048 signing ceiling, %d goroutines, %s\n", runtime.GOMAXPROCS(0), cfg.rsa)
		rep.rsa, rep.rsaCPU, rep.rsaErr = rsaCeiling(cfg.rsa)
	}
	rep.loadAfter = loadAvg()
	return rep, nil
}

func measure(self string, cfg runConfig, m mix, server string, rs *redisServer, work string, round int) (*measurement, error) {
	args, logFile, spool := serverArgs(cfg, m, server, rs, work, round)
	var sk *child
	if m.deliver == deliverSMTP && server != "bare" {
		var err error
		if sk, err = startChild(self, "-sink"); err != nil {
			return nil, err
		}
		defer sk.kill()
		args = append(args, "-smtp-addr", sk.addr)
	}
	c, err := startChild(self, args...)
	if err != nil {
		return nil, err
	}
	defer c.kill()

	ms := &measurement{mix: m, server: server, spoolFiles: -1, round: round}
	next := m.build(c.addr, cfg.clients)
	var seq atomic.Uint64
	if cfg.warmup > 0 {
		w := runLoad(c.addr, cfg.conns, cfg.warmup, next, &seq)
		ms.warm = w.Statuses
	}
	if err := c.mark(); err != nil {
		return nil, err
	}
	var sink0 time.Duration
	if sk != nil {
		if err := sk.mark(); err != nil {
			return nil, err
		}
		sink0, _ = cpuTime(sk.cmd.Process.Pid)
	}
	pid := c.cmd.Process.Pid
	cpu0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	var rcpu0 time.Duration
	if server == "redis" {
		rcpu0, _ = cpuTime(rs.pid())
	}
	gen0, _ := cpuTime(os.Getpid())
	busy0, total0 := machineCPU()

	ms.res = runLoad(c.addr, cfg.conns, cfg.duration, next, &seq)

	busy1, total1 := machineCPU()
	gen1, _ := cpuTime(os.Getpid())
	cpu1, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	ms.cpu, ms.genCPU = cpu1-cpu0, gen1-gen0
	ours := ms.cpu + ms.genCPU
	if sk != nil {
		sink1, _ := cpuTime(sk.cmd.Process.Pid)
		ms.sinkCPU = sink1 - sink0
		ours += ms.sinkCPU
	}
	if server == "redis" {
		rcpu1, _ := cpuTime(rs.pid())
		ms.redisCPU = rcpu1 - rcpu0
		ours += ms.redisCPU
		_, ms.redisRSSKB, _ = memKB(rs.pid())
	}
	if total1 > total0 {
		// Ticks are per CPU; ours is wall-clock CPU time.
		oursTicks := float64(ours) / float64(time.Second) * clockTicks
		ms.othersFrac = max(0, (float64(busy1-busy0)-oursTicks)/float64(total1-total0))
	}
	if ms.hwmKB, _, err = memKB(pid); err != nil {
		return nil, err
	}
	if ms.child, err = c.stop(); err != nil {
		return nil, err
	}
	if err := ms.collect(logFile, spool, sk); err != nil {
		return nil, err
	}
	return ms, nil
}

// serverArgs are the flags of a server child for one cell, with the
// decision log file and spool it will write ("" when none).
func serverArgs(cfg runConfig, m mix, server string, rs *redisServer, work string, round int) (args []string, logFile, spool string) {
	args = []string{"-serve", server, "-mix", m.name, "-log", cfg.logMode}
	if server == "redis" {
		args = append(args, "-redis-addr", rs.addr, "-redis-timeout", cfg.redisTO.String())
	}
	if cfg.logMode == "file" && server != "bare" {
		logFile = filepath.Join(work, fmt.Sprintf("%s-%s-%d.log", m.name, server, round))
		args = append(args, "-logfile", logFile)
	}
	if m.deliver != "" && server != "bare" {
		spool = filepath.Join(work, fmt.Sprintf("%s-%s-%d", m.name, server, round))
		args = append(args, "-spool", spool)
	}
	if cfg.profDir != "" {
		base := filepath.Join(cfg.profDir, fmt.Sprintf("%s-%s-%d", m.name, server, round))
		args = append(args, "-cpuprofile", base+".cpu.pprof", "-memprofile", base+".allocs.pprof")
	}
	return args, logFile, spool
}

// collect reads what the server left behind: its log's size, the sink's
// counts and the spool as a restarted service would see it.
func (ms *measurement) collect(logFile, spool string, sk *child) error {
	var err error
	ms.logBytes, ms.logLines = -1, -1
	if logFile != "" {
		if ms.logBytes, ms.logLines, err = countLines(logFile); err != nil {
			return err
		}
		os.Remove(logFile)
	}
	if sk != nil {
		l, err := sk.stopLine()
		if err != nil {
			return err
		}
		ms.sink = new(sinkStats)
		if err := json.Unmarshal([]byte(l), ms.sink); err != nil {
			return fmt.Errorf("sink: final line %q: %v", l, err)
		}
	}
	if spool != "" {
		// The server has exited: open the spool as a restarted service
		// would (replaying its log) and count what it would deliver.
		q, err := outbox.NewDir(outbox.DirConfig{Path: spool})
		if err != nil {
			return err
		}
		st, err := q.Stats(context.Background(), time.Now())
		q.Close()
		if err != nil {
			return err
		}
		ms.spoolFiles = st.Depth
	}
	return nil
}

// median returns the round with the median req/s, carrying every
// round's rate for the report.
func median(ms []*measurement) *measurement {
	sorted := slices.Clone(ms)
	slices.SortFunc(sorted, func(a, b *measurement) int { return cmp.Compare(a.rate(), b.rate()) })
	m := sorted[(len(sorted)-1)/2]
	for _, x := range ms {
		m.rates = append(m.rates, x.rate())
		if ok, have := x.accounted(); x != m && x.spoolFiles >= 0 && have < ok {
			m.roundsLost++
		}
	}
	return m
}

// child is a -serve process of this binary.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	addr  string
}

const childTimeout = 30 * time.Second

func startChild(self string, args ...string) (*child, error) {
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	line, err := c.line()
	if err != nil {
		c.kill()
		return nil, err
	}
	addr, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		c.kill()
		return nil, fmt.Errorf("%w: unexpected %q", errChild, line)
	}
	c.addr = addr
	return c, nil
}

func (c *child) line() (string, error) {
	select {
	case l, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("%w exited early", errChild)
		}
		return l, nil
	case <-time.After(childTimeout):
		return "", fmt.Errorf("%w: no answer in %s", errChild, childTimeout)
	}
}

// mark starts the child's measured window (its CPU profile and counters).
func (c *child) mark() error {
	if _, err := io.WriteString(c.stdin, "mark\n"); err != nil {
		return err
	}
	l, err := c.line()
	if err == nil && l != "marked" {
		err = fmt.Errorf("%w: unexpected %q", errChild, l)
	}
	return err
}

// stop closes the child's stdin and reads its final counters.
func (c *child) stop() (childStats, error) {
	var st childStats
	l, err := c.stopLine()
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(l), &st); err != nil {
		return st, fmt.Errorf("%w: final line %q: %v", errChild, l, err)
	}
	return st, nil
}

// stopLine closes the child's stdin, reads its final line and waits for
// it to exit.
func (c *child) stopLine() (string, error) {
	_ = c.stdin.Close()
	l, err := c.line()
	if err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(childTimeout):
		c.kill()
		err = fmt.Errorf("%w did not exit", errChild)
	}
	return l, err
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Kill()
	}
}

// rsaCeiling is how many RSA-2048 PKCS#1 v1.5 SHA-256 signatures (what a
// DKIM rsa-sha256 signature costs, RFC 6376 3.3.1) all cores make per
// second, one signing goroutine per core.
//
// It also returns the process CPU time per signature: other tenants change
// the rate, not (much) what one signature costs.
func rsaCeiling(d time.Duration) (float64, time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, 0, err
	}
	sum := sha256.Sum256([]byte("formguard"))
	if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
		return 0, 0, err
	}
	cpu0, _ := cpuTime(os.Getpid())
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	cpu1, _ := cpuTime(os.Getpid())
	return float64(n.Load()) / time.Since(start).Seconds(), (cpu1 - cpu0) / time.Duration(max(n.Load(), 1)), nil
}
