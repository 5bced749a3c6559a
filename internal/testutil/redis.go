package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a real redis-server started for a test on a free loopback port,
// with persistence off. Stop kills it; Restart starts it again on the same
// port (for failure-policy tests). Cleanup is registered on the test.
type Redis struct {
	Addr string // 127.0.0.1:PORT
	Port int

	bin string
	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts redis-server for tb and stops it when tb ends.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	r := &Redis{bin: LookPath(tb, "redis-server")}
	for attempt := 0; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			tb.Fatal(err)
		}
		r.Port, r.Addr = port, net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = r.start(); err == nil {
			break
		}
		if attempt == 4 {
			tb.Fatalf("starting redis-server: %v", err)
		}
	}
	tb.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--daemonize", "no", "--loglevel", "warning")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	// Drain output so redis never blocks on a full pipe.
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(r.Addr) == nil {
			r.cmd = cmd
			return nil
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("redis-server on %s did not answer PING", r.Addr)
}

// Stop kills the server (SIGKILL: no graceful shutdown, like a crash).
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart starts a stopped server again on the same port (empty data set).
func (r *Redis) Restart(tb testing.TB) {
	tb.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		tb.Fatal(err)
	}
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
