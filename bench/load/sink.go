package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// sinkStats is the SMTP sink's last line on stdout.
type sinkStats struct {
	Messages uint64 `json:"messages"` // messages accepted over the sink's life
	Window   uint64 `json:"window"`   // messages accepted since "mark"
}

// sink is a loopback SMTP server (RFC 5321) that accepts and discards
// every message, answering each command at once: the fastest relay the
// mailer could have. It runs as its own child process (-sink) so its CPU
// is not charged to the server, and stops when its stdin closes.
func sink() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var n atomic.Uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go sinkConn(c, &n)
		}
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	var n0 uint64
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "mark" {
			n0 = n.Load()
			fmt.Println("marked")
		}
	}
	ln.Close()
	total := n.Load()
	return json.NewEncoder(os.Stdout).Encode(sinkStats{Messages: total, Window: total - n0})
}

func sinkConn(c net.Conn, n *atomic.Uint64) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	reply := func(s string) bool {
		_, _ = w.WriteString(s + "\r\n")
		return w.Flush() == nil
	}
	if !reply("220 sink.test ESMTP formguard-load") {
		return
	}
	for {
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		ok := true
		switch verb {
		case "EHLO":
			ok = reply("250-sink.test\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n250 SIZE 10485760")
		case "HELO", "MAIL", "RCPT", "RSET", "NOOP":
			ok = reply("250 OK")
		case "DATA":
			if !reply("354 go ahead") {
				return
			}
			// RFC 5321 4.1.1.4: the data ends with a line holding one ".".
			for lineStart := true; ; {
				l, err := r.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if lineStart && bytes.Equal(l, []byte(".\r\n")) {
					break
				}
				lineStart = err == nil
			}
			n.Add(1)
			ok = reply("250 OK queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			ok = reply("502 command not implemented")
		}
		if !ok {
			return
		}
	}
}
