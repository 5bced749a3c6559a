# make test: the whole suite on a fresh machine (installs what it needs).
GO      ?= go
GOFLAGS ?=
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps fmt vet race
test: deps fmt vet race

# External programs the tests use for real: redis-server, Debian's chromium.
deps:
	@need=""; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need >/dev/null; \
	fi

fmt:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Modules with their own go.mod (so their dependencies stay out of ours).
SUBMODULES := examples/gin

vet:
	$(GO) vet ./...
	@for m in $(SUBMODULES); do (cd $$m && GOFLAGS=-mod=mod $(GO) vet ./...) || exit 1; done

race:
	$(GO) test -race -count=1 ./...
	@for m in $(SUBMODULES); do (cd $$m && GOFLAGS=-mod=mod $(GO) test -race -count=1 ./...) || exit 1; done
