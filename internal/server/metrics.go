package server

import (
	"context"
	"github.com/formguard/formguard/post"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/formguard/formguard/guard"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsTimeout bounds the outbox statistics gathered per scrape.
const MetricsTimeout = 2 * time.Second

// OutboxStats is what the metrics and readiness probes need to know about
// the outbox.
type OutboxStats struct {
	Depth     int           // messages waiting or in flight
	Dead      int           // dead letters
	OldestAge time.Duration // age of the oldest waiting message
}

// Metrics are the service's Prometheus metrics, on a private registry (so
// tests can build many servers in one process).
type Metrics struct {
	reg        *prometheus.Registry
	decisions  *prometheus.CounterVec
	queued     *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	requests   *prometheus.HistogramVec
	enqueue    prometheus.Histogram
	attemptDur prometheus.Histogram

	// Children of the vectors above, by label values, so a request does
	// not hash its labels into the vector again (see counterCache).
	decided counterCache
	handed  counterCache
}

// counterCache remembers the children of a two-label CounterVec. Reads
// take no lock: the map is replaced, never modified, under mu. Children are
// created on first use, as WithLabelValues does, so /metrics shows the same
// series as without the cache; at most maxCachedSeries are remembered,
// beyond that every call asks the vector.
type counterCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[[2]string]prometheus.Counter]
}

const maxCachedSeries = 1024

func (c *counterCache) get(vec *prometheus.CounterVec, a, b string) prometheus.Counter {
	key := [2]string{a, b}
	m := c.m.Load()
	if m != nil {
		if ctr, ok := (*m)[key]; ok {
			return ctr
		}
	}
	ctr := vec.WithLabelValues(a, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && len(*old) >= maxCachedSeries {
		return ctr
	}
	n := make(map[[2]string]prometheus.Counter, 1+len(ptrMap(old)))
	for k, v := range ptrMap(old) {
		n[k] = v
	}
	n[key] = ctr
	c.m.Store(&n)
	return ctr
}

func ptrMap(m *map[[2]string]prometheus.Counter) map[[2]string]prometheus.Counter {
	if m == nil {
		return nil
	}
	return *m
}

// observerCache remembers a HistogramVec's children for one route by
// status class (1xx to 5xx), created on first use.
type observerCache struct {
	vec   *prometheus.HistogramVec
	route string
	class [6]atomic.Pointer[prometheus.Observer]
}

var statusClasses = [6]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (c *observerCache) get(code int) prometheus.Observer {
	i := code / 100
	if i < 1 || i >= len(c.class) {
		return c.vec.WithLabelValues(c.route, statusClass(code))
	}
	if o := c.class[i].Load(); o != nil {
		return *o
	}
	o := c.vec.WithLabelValues(c.route, statusClasses[i])
	c.class[i].Store(&o)
	return o
}

// MetricsConfig supplies the gauges that are read at scrape time.
type MetricsConfig struct {
	// Outbox reports the outbox's state. Zero value: no outbox gauges.
	Outbox func(ctx context.Context) (OutboxStats, error)
	// StoreFallback reports whether the rate-limit store is running on its
	// local fallback (Redis unreachable). Zero value: no such gauge.
	StoreFallback func() bool
	// GuardStats reports the guard's running totals (guard.Guard.Stats),
	// read at scrape time. Zero value: no such counters.
	GuardStats func() guard.Stats
	// StoreStats reports the stores' capacity counters. Zero value: none.
	StoreStats func() StoreStats
}

// NewMetrics registers the service's metrics and the Go runtime's.
func NewMetrics(cfg MetricsConfig) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formguard_decisions_total",
			Help: "Form posts decided, by form and code (accepted, or the rejection's stable code).",
		}, []string{"form", "code"}),
		queued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formguard_deliveries_total",
			Help: "Accepted submissions handed to the outbox, by form and result (queued, failed).",
		}, []string{"form", "result"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "formguard_delivery_attempts_total",
			Help: "Outbox delivery attempts, by outcome (delivered, retry, dead).",
		}, []string{"outcome"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "formguard_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status class.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route", "status"}),
		enqueue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "formguard_outbox_enqueue_duration_seconds",
			Help:    "Time to build, sign and durably queue one submission's mail.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
		attemptDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "formguard_delivery_attempt_duration_seconds",
			Help:    "Time spent in one delivery attempt (SMTP conversation or file write).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	m.reg.MustRegister(m.decisions, m.queued, m.attempts, m.requests, m.enqueue, m.attemptDur,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Outbox != nil {
		m.reg.MustRegister(&outboxCollector{stats: cfg.Outbox})
	}
	if cfg.StoreFallback != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "formguard_ratelimit_fallback",
			Help: "1 while the rate-limit store runs on its stricter local fallback (Redis unreachable).",
		}, func() float64 {
			if cfg.StoreFallback() {
				return 1
			}
			return 0
		}))
	}
	if cfg.GuardStats != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "formguard_log_lines_suppressed_total",
				Help: "Decision log lines left out by sampling of repeated decisions (formguard_decisions_total still counts every one).",
			}, func() float64 { return float64(cfg.GuardStats().LogSuppressed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "formguard_penalty_errors_total",
				Help: "Offences the ban store failed to record (the posts themselves were still decided).",
			}, func() float64 { return float64(cfg.GuardStats().PenaltyErrors) }),
		)
	}
	if cfg.StoreStats != nil {
		counter := func(name, help string, v func(StoreStats) uint64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
				func() float64 { return float64(v(cfg.StoreStats())) })
		}
		m.reg.MustRegister(
			counter("formguard_ratelimit_evictions_total",
				"Records the full in-memory rate-limit store evicted to make room (least valuable first).",
				func(s StoreStats) uint64 { return s.LimiterEvictions }),
			counter("formguard_replay_evictions_total",
				"Single-use token records the full in-memory replay store evicted (soonest to expire first).",
				func(s StoreStats) uint64 { return s.ReplayEvictions }),
			counter("formguard_offences_dropped_total",
				"Offences the Redis store dropped because too many were already waiting to be written.",
				func(s StoreStats) uint64 { return s.OffencesDropped }),
		)
	}
	return m
}

// StoreStats are the stores' capacity counters: evidence of a flood the
// stores absorbed by forgetting their least valuable records.
type StoreStats struct {
	LimiterEvictions uint64
	ReplayEvictions  uint64
	OffencesDropped  uint64
}

// storeStats reads whichever counters store and replay keep.
func storeStats(store, replay any) StoreStats {
	var st StoreStats
	if e, ok := store.(interface{ Evictions() uint64 }); ok {
		st.LimiterEvictions = e.Evictions()
	}
	if d, ok := store.(interface{ DroppedOffences() uint64 }); ok {
		st.OffencesDropped = d.DroppedOffences()
	}
	if e, ok := replay.(interface{ Evictions() uint64 }); ok {
		st.ReplayEvictions = e.Evictions()
	}
	return st
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: MetricsTimeout})
}

// Registry exposes the registry, for callers adding their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Decision counts one decision.
func (m *Metrics) Decision(form, code string) { m.decided.get(m.decisions, form, code).Inc() }

// Queued counts one hand-over to the outbox and its duration.
func (m *Metrics) Queued(form string, ok bool, d time.Duration) {
	res := "queued"
	if !ok {
		res = "failed"
	}
	m.handed.get(m.queued, form, res).Inc()
	m.enqueue.Observe(d.Seconds())
}

// Attempt counts one outbox delivery attempt.
func (m *Metrics) Attempt(outcome string, d time.Duration) {
	m.attempts.WithLabelValues(outcome).Inc()
	m.attemptDur.Observe(d.Seconds())
}

// outboxCollector reads the outbox's depth and age at scrape time.
type outboxCollector struct {
	stats func(ctx context.Context) (OutboxStats, error)
}

var (
	descDepth = prometheus.NewDesc("formguard_outbox_depth", "Messages waiting in the outbox (or in flight).", nil, nil)
	descDead  = prometheus.NewDesc("formguard_outbox_dead", "Messages in the outbox's dead-letter area.", nil, nil)
	descAge   = prometheus.NewDesc("formguard_outbox_oldest_age_seconds", "Age of the oldest message waiting in the outbox.", nil, nil)
	descUp    = prometheus.NewDesc("formguard_outbox_up", "1 when the outbox answered the last scrape.", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDepth
	ch <- descDead
	ch <- descAge
	ch <- descUp
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), MetricsTimeout)
	defer cancel()
	s, err := c.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(s.Dead))
	ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, s.OldestAge.Seconds())
}

// GuardHandlers returns the ErrorHandler and SuccessHandler to put in
// guard.Config, so that every rejection (and honeypot hit) is counted
// before the guard's usual answer is written.
func (m *Metrics) GuardHandlers() (onError func(http.ResponseWriter, *http.Request, *guard.Error), onSuccess func(http.ResponseWriter, *http.Request, *post.Submission)) {
	onError = func(w http.ResponseWriter, r *http.Request, e *guard.Error) {
		m.Decision(r.PathValue("form"), e.Code)
		guard.WriteError(w, r, e)
	}
	onSuccess = func(w http.ResponseWriter, r *http.Request, s *post.Submission) {
		code := "accepted"
		if e, ok := guard.Reason(r); ok {
			code = e.Code // honeypot: answered as success, counted as what it is
		}
		m.Decision(s.Form, code)
		guard.WriteSuccess(w, r, s)
	}
	return onError, onSuccess
}
