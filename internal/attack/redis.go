package attack

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Redis is a real redis-server for the harness, started the way
// internal/testutil does it but usable outside tests, and with the
// append-only file on in Dir, so that a killed and restarted server keeps
// its data the way a production one would.
type Redis struct {
	Addr string
	Dir  string
	// Fsync is appendfsync: "everysec" (Redis's default) or "always"
	// (nothing acknowledged is lost to a SIGKILL; the redis-killed
	// scenario uses it).
	Fsync string

	bin string
	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartRedis starts redis-server on a free loopback port with its data in
// dir.
func StartRedis(dir, fsync string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("attack: -redis needs redis-server (apt-get install redis-server): %w", err)
	}
	if fsync == "" {
		fsync = "everysec"
	}
	r := &Redis{Dir: dir, Fsync: fsync, bin: bin}
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = r.start(); err == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("attack: redis-server would not start in %s", dir)
}

// URL is the redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, port, _ := net.SplitHostPort(r.Addr)
	cmd := exec.Command(r.bin, "--port", port, "--bind", "127.0.0.1", "--dir", r.Dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", r.Fsync,
		"--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if redisPing(r.Addr) == nil {
			r.cmd = cmd
			return nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return errors.New("redis-server did not answer PING")
}

// Kill stops the server with SIGKILL, like a crash.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Restart starts a killed server again on the same port and data.
func (r *Redis) Restart() error {
	r.Kill()
	return r.start()
}

func redisPing(addr string) error {
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
