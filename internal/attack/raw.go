package attack

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// deriveKey mirrors internal/config.DeriveKey (HMAC-SHA256 as a PRF keyed
// by the master secret). It is restated here, not imported, so that the
// harness's stale-challenge control fails loudly if the service ever
// derives its keys differently.
func deriveKey(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("formguard v1 " + purpose))
	return m.Sum(nil)
}

func dialFrom(ctx context.Context, addr, peer string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if peer != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(peer)}
	}
	return d.DialContext(ctx, "tcp", addr)
}

// rawExchange writes req as is, half-closes when asked (a client that
// stops sending), and waits up to hold for the answer. A service still
// holding the connection after hold is a violation.
func rawExchange(ctx context.Context, addr, peer, req string, closeWrite bool, hold time.Duration) (int, string) {
	c, err := dialFrom(ctx, addr, peer)
	if err != nil {
		return 0, ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(hold))
	if _, err := c.Write([]byte(req)); err != nil {
		return 0, ""
	}
	if closeWrite {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return 0, fmt.Sprintf("truncated request held open for %s without an answer", hold)
		}
		return 0, "" // closed without an answer: refused
	}
	resp.Body.Close()
	return resp.StatusCode, ""
}

// slowloris trickles a request (its header, or its body) one small piece
// every 250ms, for at most maxHold, and reports whether the service cut it
// off first. The loop is bounded by maxHold and stops by itself.
func slowloris(ctx context.Context, addr, peer, mode string, maxHold time.Duration) (int, string) {
	c, err := dialFrom(ctx, addr, peer)
	if err != nil {
		return 0, ""
	}
	defer c.Close()
	closed := make(chan int, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(maxHold + 2*time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			closed <- 0
			return
		}
		resp.Body.Close()
		closed <- resp.StatusCode
	}()
	head := fmt.Sprintf("POST /f/%s HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\nContent-Type: %s\r\n", ContactForm, addr, addr, CTForm)
	if mode == "body" {
		head += "Content-Length: 100000\r\n\r\nname=M&message="
	}
	if _, err := c.Write([]byte(head)); err != nil {
		return 0, ""
	}
	deadline := time.NewTimer(maxHold)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case st := <-closed:
			return st, ""
		case <-deadline.C:
			return 0, fmt.Sprintf("slow %s trickle still open after %s", mode, maxHold)
		case <-ctx.Done():
			return 0, ""
		case <-tick.C:
			piece := "a"
			if mode == "header" {
				piece = fmt.Sprintf("X-Slow-%d: %s\r\n", i, strings.Repeat("b", 4))
			}
			if _, err := c.Write([]byte(piece)); err != nil {
				// The service closed the connection: cut off.
				select {
				case st := <-closed:
					return st, ""
				case <-time.After(2 * time.Second):
					return 0, ""
				}
			}
		}
	}
}
