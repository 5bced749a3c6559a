package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sort"
	"sync"
)

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// ErrDegraded is wrapped by a readiness check's error when the part is
// down but the service keeps its promises without it (Redis with
// limits.redis_fallback and a directory outbox): /readyz reports it as
// "degraded" and still answers 200.
var ErrDegraded = errors.New("degraded")

// readyz runs every readiness check in parallel, each bounded by
// DefaultReadyTimeout, and answers 503 when any fails. Only the check's
// name and "ok"/"degraded"/"fail" are shown: error text may name internal
// hosts.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	names := make([]string, 0, len(s.cfg.Ready))
	for n := range s.cfg.Ready {
		names = append(names, n)
	}
	sort.Strings(names)
	results := make(map[string]string, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), DefaultReadyTimeout)
			defer cancel()
			res := "ok"
			if err := s.cfg.Ready[n](ctx); err != nil {
				res = "fail"
				if errors.Is(err, ErrDegraded) {
					res = "degraded"
				}
				s.log.Warn("readiness check failed", "check", n, "result", res, "error", err.Error())
			}
			mu.Lock()
			results[n] = res
			mu.Unlock()
		}()
	}
	wg.Wait()
	status, code := "ok", http.StatusOK
	for _, v := range results {
		switch {
		case v == "fail":
			status, code = "unavailable", http.StatusServiceUnavailable
		case v == "degraded" && code == http.StatusOK:
			status = "degraded"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{status, results})
}

// DirWritable is a readiness check for a directory outbox: it creates and
// removes a probe file, which fails when the disk is full, read-only or the
// directory is gone.
func DirWritable(dir string) func(context.Context) error {
	return func(context.Context) error {
		f, err := os.CreateTemp(dir, ".ready-*")
		if err != nil {
			return err
		}
		name := f.Name()
		if err := f.Close(); err != nil {
			_ = os.Remove(name)
			return err
		}
		return os.Remove(name)
	}
}
