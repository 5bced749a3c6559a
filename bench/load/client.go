package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ioTimeout bounds every write and read, so a stuck server cannot hang the
// harness: the run still ends on its own.
const ioTimeout = 10 * time.Second

// loadResult is what one load phase measured.
type loadResult struct {
	Requests uint64         // responses received inside the window
	Errors   uint64         // connection or protocol errors
	Statuses map[int]uint64 // responses by status code
	Lat      *hist          // latency of every counted response
	Elapsed  time.Duration
}

// reqFunc appends the n-th request of the run (n counts across all
// connections) to buf.
type reqFunc func(buf []byte, n uint64) []byte

// runLoad drives addr with conns keep-alive HTTP/1.1 connections, each
// sending a request and waiting for its answer before sending the next
// (closed loop), until d has passed. Responses are parsed just enough to
// keep the connection in sync (status, Content-Length or chunked body,
// Connection: close).
func runLoad(addr string, conns int, d time.Duration, next reqFunc, seq *atomic.Uint64) loadResult {
	deadline := time.Now().Add(d)
	type connResult struct {
		n, errs  uint64
		statuses map[int]uint64
		lat      hist
	}
	results := make([]*connResult, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		cr := &connResult{statuses: map[int]uint64{}}
		results[i] = cr
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *clientConn
			var buf []byte
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = dial(addr); err != nil {
						cr.errs++
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				buf = next(buf[:0], seq.Add(1)-1)
				t0 := time.Now()
				status, keep, err := c.roundTrip(buf)
				lat := time.Since(t0)
				if err != nil {
					cr.errs++
					c.close()
					c = nil
					continue
				}
				cr.n++
				cr.statuses[status]++
				cr.lat.record(lat)
				if !keep {
					c.close()
					c = nil
				}
			}
			if c != nil {
				c.close()
			}
		}()
	}
	wg.Wait()
	out := loadResult{Statuses: map[int]uint64{}, Lat: new(hist), Elapsed: time.Since(start)}
	for _, cr := range results {
		out.Requests += cr.n
		out.Errors += cr.errs
		for s, n := range cr.statuses {
			out.Statuses[s] += n
		}
		out.Lat.merge(&cr.lat)
	}
	return out
}

type clientConn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(addr string) (*clientConn, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	return &clientConn{c: c, r: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *clientConn) close() { _ = c.c.Close() }

var errProto = errors.New("load: malformed response")

// roundTrip writes one complete request and reads its response.
func (c *clientConn) roundTrip(req []byte) (status int, keep bool, err error) {
	_ = c.c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("%w: status line %q", errProto, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errProto, line)
	}
	keep = line[7] == '1'
	length, chunked := int64(-1), false
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errProto, h)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errProto, v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keep = false
			}
		}
	}
	switch {
	case chunked:
		err = c.skipChunked()
	case length >= 0:
		_, err = c.r.Discard(int(length))
	case status == 204 || status == 304 || status/100 == 1:
	default: // body runs to the end of the connection
		_, err = io.Copy(io.Discard, c.r)
		keep = false
	}
	return status, keep, err
}

func (c *clientConn) skipChunked() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errProto, line)
		}
		if n == 0 {
			for { // trailers, then the final CRLF
				t, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
