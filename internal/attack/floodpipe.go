package attack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// pipelinePosts sends n POSTs to path as a bot would: each of conns
// connections writes batch requests back to back (HTTP/1.1 pipelining),
// then reads their answers. It costs the harness far less than
// net/http's client, so that even a race-instrumented test reaches the
// rates of the floods it reproduces. Request k (1..n, n 0: no end) carries body and
// comes from the client address xff(k) through the trusted proxy. A
// positive perSecond paces the requests to that rate; a non-zero until
// ends the flood then, whatever n.
func (e *Env) pipelinePosts(ctx context.Context, st *attackStats, conns, batch int, n int64, perSecond float64, until time.Time, path string, body []byte, xff func(k int64) string) {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nAccept: application/json\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Forwarded-For: ",
		path, e.Svc.Addr, e.Client.Origin, CTJSON, len(body))
	var next atomic.Int64
	start := time.Now()
	pace := func(k int64) {
		if perSecond > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(k) / perSecond * float64(time.Second)))))
		}
	}
	hammer(ctx, conns, until, func(ctx context.Context) bool {
		conn, err := net.DialTimeout("tcp", e.Svc.Addr, 5*time.Second)
		if err != nil {
			if k := next.Add(1); n > 0 && k > n {
				return false
			}
			st.tally(0, "no connection", false)
			time.Sleep(10 * time.Millisecond)
			return true
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 16<<10)
		var buf bytes.Buffer
		for ctx.Err() == nil && (until.IsZero() || time.Now().Before(until)) {
			buf.Reset()
			sent := 0
			for ; sent < batch; sent++ {
				k := next.Add(1)
				if n > 0 && k > n {
					break
				}
				pace(k)
				buf.WriteString(head)
				buf.WriteString(xff(k))
				buf.WriteString("\r\n\r\n")
				buf.Write(body)
			}
			if sent == 0 {
				return false
			}
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := conn.Write(buf.Bytes()); err != nil {
				for ; sent > 0; sent-- {
					st.tally(0, "no answer", false)
				}
				return true // a new connection
			}
			for i := 0; i < sent; i++ {
				status, code, err := readAnswer(br)
				if err != nil {
					for ; i < sent; i++ {
						st.tally(0, "no answer", false)
					}
					return true
				}
				st.tally(status, code, false)
			}
		}
		return false
	})
}

// readAnswer reads one response, returning its status and the problem
// code of a refusal.
func readAnswer(br *bufio.Reader) (int, string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, "", err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, problemCode(b), err
}
