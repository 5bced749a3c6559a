# make test: the whole suite on a fresh machine (installs what it needs).
GO      ?= go
GOFLAGS ?=
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps fmt vet lint race bench-check fuzz-short fuzz attack bench
test: deps fmt vet lint race bench-check fuzz-short

# External programs the tests use for real: redis-server and Debian's
# chromium; curl fetches the official altcha web component the browser test
# serves (no Node.js or npm needed).
deps:
	@need=""; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v curl >/dev/null || need="$$need curl ca-certificates"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need >/dev/null; \
	fi
	@scripts/fetch-altcha.sh

fmt:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Modules with their own go.mod (so their dependencies stay out of ours).
SUBMODULES := examples/gin

vet:
	$(GO) vet ./...
	@for m in $(SUBMODULES); do (cd $$m && GOFLAGS=-mod=mod $(GO) vet ./...) || exit 1; done

# Pinned linters, fetched through the module proxy. deadcode -test lists
# functions nothing calls, tests included; Example functions without an
# Output comment are compiled but never called, so they are let through.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE    := golang.org/x/tools/cmd/deadcode@v0.52.0
lint:
	$(GO) run $(STATICCHECK) ./...
	@out=$$($(GO) run $(DEADCODE) -test ./...) || exit 1; \
	out=$$(printf '%s\n' "$$out" | grep -v ': unreachable func: Example' || true); \
	if [ -n "$$out" ]; then echo "deadcode: functions nothing calls:"; echo "$$out"; exit 1; fi

race:
	$(GO) test -race -count=1 ./...
	@for m in $(SUBMODULES); do (cd $$m && GOFLAGS=-mod=mod $(GO) test -race -count=1 ./...) || exit 1; done

# The benchmark module (own go.mod, so the peers it measures never enter
# ours): vetted, built and its harness tests run; the measurements themselves
# are `make bench` (minutes, not part of the suite).
bench-check:
	cd bench && GOFLAGS=-mod=mod $(GO) vet ./... && GOFLAGS=-mod=mod $(GO) test -count=1 ./...

# Every fuzz target of the root module for FUZZTIME each (CI: short);
# `make fuzz` runs each for FUZZTIME_LONG (default 1m). A crash leaves its input in the
# package's testdata/fuzz/ and fails the run.
FUZZTIME ?= 5s
fuzz-short:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh
FUZZTIME_LONG ?= 1m
fuzz:
	FUZZTIME=$(FUZZTIME_LONG) scripts/fuzz.sh

# The full attack run, every fault and availability scenario and a
# 10-minute soak (the short versions run in `make test` as internal/attack's
# tests). offence-flood always runs on Redis.
attack:
	$(GO) run ./cmd/formguard-attack
	for f in smtp-451 sigkill outbox-unwritable; do $(GO) run ./cmd/formguard-attack -fault $$f || exit 1; done
	$(GO) run ./cmd/formguard-attack -fault redis-killed -redis
	for f in replay-fill captcha-budget limiter-full offence-flood log-flood; do $(GO) run ./cmd/formguard-attack -fault $$f || exit 1; done
	$(GO) run ./cmd/formguard-attack -fault replay-fill -redis
	$(GO) run ./cmd/formguard-attack -soak 10m

# Benchmark tables (docs/ratelimit.md, docs/performance.md).
bench:
	cd bench && $(GO) run ./ratelimit
	cd bench && $(GO) run ./load -duration 10s -conns 64 -redis -rounds 3
