# certbind: run `make help` for the targets.
GO       ?= go
# Fuzz budget per target as an execution count: a duration (e.g. 10m) works too, but Go's
# coordinator can fail a duration run at its deadline with a bare "context deadline exceeded"
# and no crasher (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 200000x
# Minimizing a new input copies the coverage counters of the whole binary, which for targets
# linking Envoy's protos stalls the fuzzer for minutes: off by default.
FUZZMIN  ?= 0
SOAK     ?= 10m
BIN      := bin

.PHONY: help build test race vet lint fmt fuzz bench bench-go soak demo interop tracing-jaeger clean testbed-up testbed-test testbed-down image

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build certbind and the demo into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

test: vet ## run every test with the race detector
	$(GO) test -race -count=1 ./...

vet: ## go vet and a gofmt check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

lint: vet ## alias of vet

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

fuzz: ## run every fuzz target for FUZZTIME each (default 200000x executions)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		pkg=$$(dirname $$f); \
		for t in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMIN) $$pkg; \
		done; \
	done

BENCHFLAGS ?=

bench: build ## certbind vs a no-op ext_authz server, and tracing on vs off: rps, p50/p99, server CPU per check, ratios vs targets (BENCHFLAGS="--duration 3s --strict --memory")
	$(BIN)/certbind-bench --certbind $(BIN)/certbind --noop $(BIN)/noop-authz $(BENCHFLAGS)

bench-go: ## in-process Go benchmarks of the decision path
	$(GO) test -run='^$$' -bench=. -benchmem ./policy/ ./extauthz/

# The Node.js side of the interop suite is pinned by its lockfile; without Node.js the suite
# skips with one line (and fails in CI).
interop: ## certbind with a real authorization server and OAuth client (oidc-provider, openid-client from npm) behind nginx and the Envoy stand-in
	@if command -v npm >/dev/null 2>&1; then \
		cd testenv/interop/node && npm ci --no-audit --no-fund --loglevel=error && npm test --silent; \
	fi
	CERTBIND_INTEROP=1 $(GO) test -count=1 -v -run '^TestInterop' ./testenv/interop/

# Jaeger v2, built from its Go module pinned in tools/jaeger (a module of its own, so its
# dependencies stay out of certbind's).
$(BIN)/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO) build -o ../../$(BIN)/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

tracing-jaeger: $(BIN)/jaeger ## the tracing test against a real receiver: Jaeger v2 built from its Go module
	CERTBIND_JAEGER=$(abspath $(BIN)/jaeger) $(GO) test -count=1 -v -run '^TestTracesInJaeger$$' ./tracing/

soak: ## sustained mixed workload through the Envoy stand-in, every answer checked (SOAK=10m)
	$(GO) run ./cmd/certbind-soak -duration $(SOAK)

demo: ## the whole flow on this machine: PKI, certbind, Envoy stand-in, demo AS and API, scripted client
	$(GO) run ./cmd/certbind-demo

image: ## build the certbind container image
	docker build -t certbind .

testbed-up: ## start the docker-compose test bed (Envoy, certbind, demo AS and API)
	docker compose up --build -d

testbed-test: ## run the curl checks through Envoy against the running test bed
	docker compose run --rm client

testbed-down: ## stop the test bed and delete its PKI volume
	docker compose down -v

clean: ## remove build output
	rm -rf $(BIN)
