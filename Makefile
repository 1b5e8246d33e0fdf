# mcpgw — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
TESTFLAGS ?= -race -shuffle=on -timeout 15m

# Two build settings, and each package is compiled once under each that
# needs it (any other setting changes every package's build cache key):
#
# RACEENV is go test -race's (cgo on, the race detector). golangci-lint runs
# with it: its go list -export compiles every package it checks, tests
# included, and go test -race then finds each of them compiled and only
# links. lint sees the files a race build sees (//go:build race), the files
# the tests run.
#
# SHIPENV builds as the Dockerfile does (CGO_ENABLED=0 -trimpath) for what
# needs no race detector: the tools (golangci-lint, helmlite, kubeconform,
# the everything-server), the binaries the tests build and run (mcpgw, the
# demo and bench upstreams: make binaries), test/ship's static binary and
# its go tool runs, the startup checks. Only the packages those binaries
# import are compiled with it, not the tests and their test-only
# dependencies (chromedp's DevTools protocol, go/types).
GOFLAGS_ENV := $(shell $(GO) env GOFLAGS)
RACEENV := CGO_ENABLED=1 GOFLAGS='$(strip $(GOFLAGS_ENV) -race)'
SHIPENV := CGO_ENABLED=0 GOFLAGS='$(strip $(GOFLAGS_ENV) -trimpath)'

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the static mcpgw binary, the demo upstream and the dev-only issuer into bin/.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/mcpgw ./cmd/mcpgw
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/demo-upstream ./test/upstreams/cmd/demo-upstream
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/mcpgw-devissuer ./test/devissuer

# Lint findings fail make test (and so CI). LINT_FATAL=0 reports them and
# still runs the tests, for a local run in the middle of a change.
LINT_FATAL ?= 1
PHASE := ./scripts/phase.sh
LINT_PHASE := $(PHASE) $(if $(filter 1,$(LINT_FATAL)),,--soft) lint

# make test's phases, and what a cold run (empty build, module and lint
# caches, nothing installed) cost on the 2-core machine: see "How long make
# test takes" in README.md. There is no go vet phase: lint's govet runs
# every analyzer go vet runs (enable-all in .golangci.yml), on the tests
# too, and go test runs with -vet=off for the same reason.
.PHONY: test
test: ## What CI runs, each phase headed and timed: deps (what is missing), lint (go vet's analyzers among its linters; findings fail it, LINT_FATAL=0 only reports; it compiles what go test -race links), binaries (what the tests build, as the Dockerfile builds), go test -race of everything, the startup checks, the conformance suite direct and through mcpgw.
	@export PHASE_LOG=$$(mktemp); \
	{ $(MAKE) --no-print-directory deps && \
	  $(LINT_PHASE) -- $(MAKE) --no-print-directory lint && \
	  $(PHASE) binaries -- $(MAKE) --no-print-directory binaries && \
	  $(PHASE) test -- $(GO) test -vet=off $(TESTFLAGS) $$($(GO) list ./... | grep -v '/test/conformance$$') && \
	  $(PHASE) "startup checks" -- $(MAKE) --no-print-directory startup-checks && \
	  $(PHASE) conformance -- $(MAKE) --no-print-directory conformance; }; \
	rc=$$?; $(PHASE) --summary; rm -f "$$PHASE_LOG"; exit $$rc

# startup-checks mutates every key of the configuration and holds serve's
# start-up to what validate reports (cmd/mcpgw/startup_test.go). It runs
# without the race detector, with SHIPENV's settings so that it compiles
# only cmd/mcpgw's tests (make binaries compiled the rest): six thousand
# start-ups take 25 s here and minutes under -race, and the race run skips
# it.
.PHONY: startup-checks
startup-checks: ## Hold serve's start-up to validate: every key of the configuration mutated (no race detector; make test runs it).
	env $(SHIPENV) $(GO) test -vet=off -count=1 -run '^TestServeRefusesOnlyWhatValidateReports$$' ./cmd/mcpgw

# deps: three lines at once, so that the cores compile while the network
# downloads: the apt installs (redis-server, chromium), the npm installs
# (oidc-provider, Node and the conformance suite: downloads, little CPU),
# and in front the Go module download (beside it, the standard library's
# part every tool and binary builds: net/http and what it imports, which
# needs no module) then the Go builds (CPU). The apt and
# npm lines' output is printed after the builds. The npm installs stay in
# one line: two at once corrupt each other's reads of the shared npm cache
# (seen: "tarball data ... seems to be corrupted"). One phase per step,
# each installing what is missing, saying what it installed (or that
# nothing was missing) and timed, so that the tests install nothing
# themselves; the table's total adds the lines' wall times as if in turn. A new dependency is one more line of the same
# kind, and its cost goes into the budget in README.md ("How long make test
# takes"): an apt package as scripts/ensure-redis.sh installs redis-server
# (chromium for a browser test: 112 MB of packages, a minute or two on a
# fresh machine, mostly the download); npm packages as scripts/ensure-npm.sh
# installs a directory's package-lock.json; a Go tools module as
# make conformance-server builds go-sdk's everything-server, with SHIPENV's
# settings so that it shares what the other tools compiled.
.PHONY: deps
deps: ## Install what the tests and lint need, each step timed and saying what it installs: redis-server, chromium (the console's browser test), the Go modules, the npm packages of the test peers, the MCP conformance suite (and Node 22+), helmlite and kubeconform, golangci-lint.
	@apt=$$(mktemp); npm=$$(mktemp); \
	{ $(PHASE) "deps: redis-server" -- ./scripts/ensure-redis.sh && \
	  $(PHASE) "deps: chromium" -- ./scripts/ensure-chromium.sh; } >"$$apt" 2>&1 & \
	apt_pid=$$!; \
	{ $(PHASE) "deps: npm (oidc-provider)" -- ./scripts/ensure-npm.sh authn/testdata/oidcprovider && \
	  $(PHASE) "deps: conformance suite" -- ./scripts/ensure-conformance.sh; } >"$$npm" 2>&1 & \
	npm_pid=$$!; \
	echo "deps: the apt and npm installs run beside the Go builds; their output follows them"; \
	$(PHASE) "deps: std's net/http (SHIPENV)" -- env $(SHIPENV) $(GO) build net/http & std_pid=$$!; \
	$(PHASE) "deps: Go modules" -- ./scripts/mod-download.sh tools/go.mod tools/chart/go.mod tools/conformance/go.mod; \
	mod_rc=$$?; wait $$std_pid && [ $$mod_rc -eq 0 ] && \
	$(PHASE) "deps: everything-server" -- $(MAKE) --no-print-directory conformance-server && \
	$(PHASE) "deps: helmlite, kubeconform" -- $(MAKE) --no-print-directory chart-tools && \
	$(PHASE) "deps: golangci-lint" -- $(MAKE) --no-print-directory lint-tool; \
	rc=$$?; wait $$npm_pid; npm_rc=$$?; wait $$apt_pid; apt_rc=$$?; \
	cat "$$npm" "$$apt"; rm -f "$$npm" "$$apt"; \
	[ $$rc -eq 0 ] && [ $$npm_rc -eq 0 ] && [ $$apt_rc -eq 0 ]

# The chart tools are a module of their own, tools/chart: helmlite (helm
# lint and helm template on helm's packages, tools/chart/helmlite) and
# kubeconform, pinned in its go.mod apart from tools/go.mod, whose
# golangci-lint would otherwise share their dependency versions. Both run
# with SHIPENV, as test/ship runs them, so that the build cache has one
# build of each. The tool modules build what mcpgw's binaries also build
# (protobuf, golang.org/x/net, the go-sdk) at go.mod's versions, so that
# it is compiled once for all of them (test/deps,
# TestToolsShareTheBinariesCompiles, says which go get to run).
CHART_TOOL := env $(SHIPENV) $(GO) -C tools/chart tool
LINT_TOOL := env $(SHIPENV) $(GO) tool -modfile=tools/go.mod

.PHONY: chart-tools
chart-tools: ## Build helmlite and kubeconform into the build cache, so test timeouts do not pay for it.
	@echo "chart-tools: helmlite (helm's packages) and kubeconform from tools/chart/go.mod, built unless the build cache has them"
	$(CHART_TOOL) -n helmlite
	$(CHART_TOOL) kubeconform -v

# The conformance test builds go-sdk's everything-server (pinned in
# tools/conformance/go.mod) with the same settings: it then only links.
.PHONY: conformance-server
conformance-server: ## Build the Go SDK's everything-server (tools/conformance/go.mod) into the build cache, for the conformance test.
	@echo "conformance-server: go-sdk $$(sed -n 's/^\tgithub.com\/modelcontextprotocol\/go-sdk \(v[^ ]*\).*/\1/p' tools/conformance/go.mod) everything-server, built unless the build cache has it"
	env $(SHIPENV) $(GO) build -modfile=tools/conformance/go.mod -o /dev/null github.com/modelcontextprotocol/go-sdk/conformance/everything-server

.PHONY: lint-tool
lint-tool: ## Build golangci-lint (pinned in tools/go.mod) into the build cache.
	@echo "lint-tool: golangci-lint from tools/go.mod, built unless the build cache has it"
	$(LINT_TOOL) golangci-lint version

# The conformance test builds mcpgw itself, which the test cache cannot
# see: -count=1. -v prints its three score lines.
.PHONY: conformance
conformance: ## Run the official MCP conformance suite directly against go-sdk's everything-server and through mcpgw; print the scores (make deps installs the suite).
	$(GO) test -count=1 -v -timeout 10m -run 'TestConformance' ./test/conformance/

.PHONY: chart-check
chart-check: chart-tools ## helm lint --strict, golden renders and kubeconform for charts/mcpgw (helmlite: helm's packages); the Dockerfile's static binary (test/ship).
	$(GO) test $(TESTFLAGS) ./test/ship/

.PHONY: image
image: ## Build the container image with docker (VERSION and COMMIT are stamped in).
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t mcpgw:$(VERSION) .

.PHONY: demo
demo: build ## Start three demo upstreams, a dev-only OIDC issuer and mcpgw (OAuth on) on 127.0.0.1; print the URL, a token, the console and host configs. Ctrl-C stops it all; logs stay in the folder it names.
	./scripts/demo.sh

.PHONY: demo-noauth
demo-noauth: build ## make demo without auth (configs/demo.yaml): loopback only, no token.
	DEMO_AUTH=0 ./scripts/demo.sh

.PHONY: docs
docs: ## Regenerate docs/configuration.md from the configs structs (go generate ./configs).
	$(GO) generate ./configs

.PHONY: lint
lint: ## Run golangci-lint (pinned in tools/go.mod, built with SHIPENV) with RACEENV, so that it compiles what go test -race links; its govet runs go vet's analyzers.
	@bin=$$($(LINT_TOOL) -n golangci-lint) && echo "env $(RACEENV) $$bin run ./..." && \
	env $(RACEENV) "$$bin" run ./...

# binaries compiles, with SHIPENV, every package of the binaries the tests
# build and run: mcpgw and the demo upstream (test/e2e, test/conformance),
# the bench smoke run's helpers (bench/run), the development issuer. The
# tests then only link them; go list -export compiles without linking.
SHIP_BINARIES := ./cmd/mcpgw ./test/upstreams/cmd/demo-upstream ./test/devissuer ./bench/upstream ./bench/proxy ./bench/load ./bench/sdkupstream

.PHONY: binaries
binaries: ## Compile the binaries the tests build (mcpgw, the demo and bench upstreams), as the Dockerfile builds, into the build cache.
	@set -o pipefail; echo "binaries: compiling $(SHIP_BINARIES) with SHIPENV unless the build cache has them"; \
	n=$$(env $(SHIPENV) $(GO) list -export -deps -f '{{.ImportPath}}' $(SHIP_BINARIES) | wc -l) && \
	echo "binaries: $$n packages compiled or found in the build cache"

.PHONY: vet
vet: ## go vet alone (make test leaves it to lint's govet), with RACEENV, so that it shares what lint and go test -race compile.
	env $(RACEENV) $(GO) vet ./...

.PHONY: tidy-check
tidy-check: ## Fail when go.mod/go.sum are not tidy.
	$(GO) mod tidy -diff

.PHONY: check
check: tidy-check ## The one gate: tidy, then make test with lint fatal (LINT_FATAL=1).
	@$(MAKE) --no-print-directory test LINT_FATAL=1

.PHONY: bench
bench: ## Benchmark mcpgw against a bare reverse proxy (about 17 min on 2 cores); writes docs/BENCHMARKS.md. BENCHFLAGS passes flags.
	$(GO) run ./bench/run $(BENCHFLAGS)

.PHONY: bench-smoke
bench-smoke: ## Run the benchmark very briefly to check it works; the report goes to a temp file.
	$(GO) run ./bench/run -smoke $(BENCHFLAGS)
