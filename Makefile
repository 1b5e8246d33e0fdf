# mcpgw — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TESTFLAGS ?= -race -shuffle=on -timeout 15m

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static mcpgw binary and the demo upstream into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mcpgw ./cmd/mcpgw
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/demo-upstream ./test/upstreams/cmd/demo-upstream

.PHONY: test
test: ## Run every test with the race detector (what CI runs). Installs redis-server when missing.
	./scripts/ensure-redis.sh
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

.PHONY: demo
demo: build ## Start three demo upstreams and mcpgw on 127.0.0.1; print the URL and host configs.
	./scripts/demo.sh

.PHONY: lint
lint: ## Run golangci-lint (pinned in tools/go.mod).
	$(GO) tool -modfile=tools/go.mod golangci-lint run ./...

.PHONY: tidy-check
tidy-check: ## Fail when go.mod/go.sum are not tidy.
	$(GO) mod tidy -diff

.PHONY: check
check: tidy-check lint test ## The one gate: tidy, lint, tests (with the import-graph test).

.PHONY: bench
bench: ## Benchmark mcpgw against a bare reverse proxy (about 12 min on 2 cores); writes docs/BENCHMARKS.md. BENCHFLAGS passes flags.
	$(GO) run ./bench/run $(BENCHFLAGS)

.PHONY: bench-smoke
bench-smoke: ## Run the benchmark very briefly to check it works; the report goes to a temp file.
	$(GO) run ./bench/run -smoke $(BENCHFLAGS)
