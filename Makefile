# make test: the whole suite on a fresh machine (installs what it needs).
GO      ?= go
GOFLAGS ?=
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test deps fmt vet race
test: deps fmt vet race

# Browser-test dependency: the official altcha web component from npm.
NPM_DIRS := guard/captcha/testdata/browser

# External programs the tests use for real: redis-server, Debian's chromium,
# node/npm (for the altcha widget), then the npm packages themselves.
deps:
	@need=""; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v chromium >/dev/null || need="$$need chromium"; \
	command -v npm >/dev/null || need="$$need nodejs npm"; \
	if [ -n "$$need" ]; then \
		echo "installing:$$need"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need >/dev/null; \
	fi
	@for d in $(NPM_DIRS); do \
		[ -d $$d/node_modules ] || (echo "npm ci in $$d" && cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	done

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
