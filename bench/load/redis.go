package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/formguard/formguard/guard/ratelimit"
)

// newRedisStore builds the guard's Redis store for the server child. It
// is set by store_redis.go, so the harness builds (without -redis) on a
// tree that has no Redis store yet.
var newRedisStore func(addr string, timeout time.Duration) (ratelimit.Store, func(), error)

// redisServer is a redis-server the harness starts on a free loopback
// port, persistence off, and kills at the end of the run.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
}

func startRedis() (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install -y redis-server): %w", err)
	}
	for attempt := 0; attempt < 5; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--protected-mode", "no",
			"--daemonize", "no", "--loglevel", "warning")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		r := &redisServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if r.command("PING") == nil {
				return r, nil
			}
		}
		r.stop()
	}
	return nil, errors.New("redis-server did not start")
}

func (r *redisServer) pid() int { return r.cmd.Process.Pid }

func (r *redisServer) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// command sends one inline command and expects a simple-string reply.
func (r *redisServer) command(cmd string) error {
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("redis %s: %s", cmd, strings.TrimSpace(line))
	}
	return nil
}
