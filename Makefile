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
build: ## Build the static mcpgw binary, the demo upstream and the dev-only issuer into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mcpgw ./cmd/mcpgw
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/demo-upstream ./test/upstreams/cmd/demo-upstream
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/mcpgw-devissuer ./test/devissuer

.PHONY: test
test: chart-tools ## Run every test with the race detector (what CI runs), the chart checks (test/ship) included. Installs redis-server when missing.
	./scripts/ensure-redis.sh
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# helm and kubeconform, pinned in tools/chart/go.mod (apart from tools/go.mod,
# whose golangci-lint would otherwise share their dependency versions).
CHART_TOOL := $(GO) tool -modfile=tools/chart/go.mod

.PHONY: chart-tools
chart-tools: ## Build helm and kubeconform (cold: about 7 CPU-minutes), so test timeouts do not pay for it.
	$(CHART_TOOL) helm version --short
	$(CHART_TOOL) kubeconform -v

.PHONY: chart-check
chart-check: chart-tools ## helm lint --strict, golden renders and kubeconform for charts/mcpgw; the Dockerfile's static binary (test/ship).
	$(GO) test $(TESTFLAGS) ./test/ship/

.PHONY: image
image: ## Build the container image with docker (VERSION and COMMIT are stamped in).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t mcpgw:$(VERSION) .

.PHONY: demo
demo: build ## Start three demo upstreams, a dev-only OIDC issuer and mcpgw (OAuth on) on 127.0.0.1; print the URL, a token and host configs.
	./scripts/demo.sh

.PHONY: docs
docs: ## Regenerate docs/configuration.md from the configs structs (go generate ./configs).
	$(GO) generate ./configs

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
