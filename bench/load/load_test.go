package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond},
		{1, 1000 * time.Microsecond},
	} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -1.0/64 || d > 1.0/64 {
			t.Errorf("quantile(%v) = %v, want %v within 1/64", c.q, got, c.want)
		}
	}
	var merged hist
	merged.merge(&h)
	merged.merge(&h)
	if merged.n != 2000 || merged.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merged: n %d, p50 %v; want 2000, %v", merged.n, merged.quantile(0.5), h.quantile(0.5))
	}
}

func TestBucketsAreMonotonic(t *testing.T) {
	prev := -1
	for ns := int64(0); ns < 1<<22; ns += 1 + ns/97 {
		b := bucketOf(ns)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d < %d", ns, b, prev)
		}
		if lo := lowerBound(b); lo > ns || lowerBound(b+1) <= ns {
			t.Fatalf("%d not in bucket %d [%d, %d)", ns, b, lo, lowerBound(b+1))
		}
		prev = b
	}
}

// TestRunLoad drives a real net/http server with every kind of answer the
// client must keep in sync with: fixed length, chunked, empty, and
// Connection: close.
func TestRunLoad(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		switch n := served.Add(1); n % 4 {
		case 0:
			w.WriteHeader(http.StatusNoContent)
		case 1:
			fmt.Fprint(w, `{"ok":true}`)
		case 2:
			w.WriteHeader(http.StatusTooManyRequests)
			for range 3 {
				fmt.Fprint(w, strings.Repeat("x", 100))
				w.(http.Flusher).Flush() // chunked
			}
		case 3:
			w.Header().Set("Connection", "close")
			fmt.Fprint(w, "bye")
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	var seq atomic.Uint64
	res := runLoad(host, 4, 300*time.Millisecond, mixes[0].build(host, 10), &seq)
	if res.Errors != 0 {
		t.Fatalf("%d errors", res.Errors)
	}
	if res.Requests == 0 || int64(res.Requests) != served.Load() {
		t.Fatalf("counted %d responses, server answered %d", res.Requests, served.Load())
	}
	for _, s := range []int{200, 204, 429} {
		if res.Statuses[s] == 0 {
			t.Errorf("no %d answers counted: %v", s, res.Statuses)
		}
	}
	if res.Lat.n != res.Requests {
		t.Errorf("latency samples %d, responses %d", res.Lat.n, res.Requests)
	}
}

func TestDistinctClientsRequests(t *testing.T) {
	next := distinctClients("h", 100_000)
	for _, n := range []uint64{0, 99_999, 100_000} {
		req := string(next(nil, n))
		r, err := http.ReadRequest(bufioReader(req))
		if err != nil {
			t.Fatalf("request %d: %v", n, err)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		c := n % 100_000
		wantIP := fmt.Sprintf("198.%d.%d.%d", 18+c>>16, c>>8&0xff, c&0xff)
		if got := r.Header.Get("X-Forwarded-For"); got != wantIP {
			t.Errorf("request %d: X-Forwarded-For %q, want %q", n, got, wantIP)
		}
		if got, want := r.PostForm.Get("email"), fmt.Sprintf("visitor%d@example.org", c); got != want {
			t.Errorf("request %d: email %q, want %q", n, got, want)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
