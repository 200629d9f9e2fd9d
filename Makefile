# converge: build, run and test. `make run` and `make test` install what is missing first.
# Tuned for 2-core machines: package builds and test binaries run at most two at a time.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO         ?= go
DATA_DIR   ?= ./data
TEST_FLAGS ?=
# Benchmarks: `make bench BENCH=Insert BENCHTIME=5x`.
BENCH      ?= .
BENCHTIME  ?= 2s
BENCHCOUNT ?= 1
# Fuzzing: each fuzz target runs this long (`make fuzz FUZZTIME=60s`); `make test` runs them briefly.
FUZZTIME   ?= 8s

TEMPL := ./bin/templ
# The installer prints the library path on its last line (it is cached: instant after the first run).
ENGINE_LIB = $$(bash scripts/install-chdb.sh | tail -n 1)

.PHONY: deps chdb templ chromium generate check-generated build run test vet config-doc fuzz vulncheck bench bench-go soak fmt clean

## deps: install the chDB engine library (cache dir) and the templ CLI (./bin)
deps: chdb templ

chdb:
	@bash scripts/install-chdb.sh >/dev/null

templ:
	@bash scripts/install-templ.sh >/dev/null

## chromium: install headless Chromium and chromedriver (browser tests)
chromium:
	@bash scripts/install-chromium.sh

## generate: regenerate templ components (*_templ.go, committed)
generate: templ
	$(TEMPL) generate

## check-generated: the committed *_templ.go must be what `templ generate` writes.
## Strict under CI (CI is set, a fresh clone: any change or untracked file fails); locally, where
## regenerated files may simply not be committed yet, the same findings are a warning.
check-generated: generate
	@if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		echo "check-generated: not a git work tree, skipping" >&2; exit 0; \
	fi; \
	diff="$$(git status --porcelain --untracked-files=all -- '*_templ.go')"; \
	if [[ -z "$$diff" ]]; then exit 0; fi; \
	if [[ -n "$${CI:-}" ]]; then \
		echo "ERROR: generated templ code is stale: after 'templ generate' these differ from the commit:" >&2; \
		echo "$$diff" >&2; \
		echo "Run 'make generate' and commit the *_templ.go files." >&2; \
		exit 1; \
	fi; \
	echo "warning: *_templ.go differ from the last commit (CI fails on this; commit them):" >&2; \
	echo "$$diff" >&2

## build: install deps, generate, build ./bin/converge
build: deps generate
	$(GO) build -p 2 -o bin/converge ./cmd/converge

## run: build, load the small demo company on first start, serve on the embedded store in
## $(DATA_DIR) at http://localhost:8080
run: build
	CONVERGE_ENGINE_LIB="$(ENGINE_LIB)" ./bin/converge demo --size small --if-empty --data-dir $(DATA_DIR) --log-level warn
	CONVERGE_ENGINE_LIB="$(ENGINE_LIB)" ./bin/converge serve --data-dir $(DATA_DIR)

## vet: go vet every package
vet:
	$(GO) vet ./...

## config-doc: regenerate docs/config.md, the configuration reference, from the keys cmd/converge
## declares (`converge config doc`); a test of `make test` fails while it is stale
config-doc:
	@$(GO) run ./cmd/converge config doc > docs/config.md.tmp || { rm -f docs/config.md.tmp; exit 1; }
	@mv docs/config.md.tmp docs/config.md
	@echo "docs/config.md regenerated"

## vulncheck: known vulnerabilities reachable from converge (govulncheck, installed into ./bin);
## skipped with a warning where the vulnerability database cannot be reached, unless
## VULNCHECK=require (see scripts/vulncheck.sh)
vulncheck:
	@bash scripts/vulncheck.sh

## fuzz: run each fuzz target for $(FUZZTIME) (the seeds and testdata/fuzz corpus also run in go test)
fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME)

## test: install what the tests need, check generated code, vet, check vulnerabilities, run every
## test, then each fuzz target briefly
test: deps chromium check-generated vet vulncheck
	CONVERGE_ENGINE_LIB="$(ENGINE_LIB)" $(GO) test -p 2 -count=1 -timeout 40m $(TEST_FLAGS) ./...
	@bash scripts/fuzz.sh $(FUZZTIME)

## bench: `converge bench` on ./bench-data (the demo of BENCH_SIZE is generated there first
## when it is empty; small takes seconds, large ~15 min and 5 GB): one table, also in bench-out/
BENCH_SIZE ?= small
bench: build
	./bin/converge bench --size $(BENCH_SIZE) --data-dir ./bench-data-$(BENCH_SIZE) --out ./bench-out-$(BENCH_SIZE)

## soak: the load test (server TestLoad, 50 users and 100 events/s for 30 s in `make test`) for
## longer: SOAK_DURATION (default 10m), SOAK_USERS (50), SOAK_EVENTS per second (100), SOAK_THINK
## (a user's mean pause between pages, 1s). It logs the page-time quantiles, goroutines and heap.
SOAK_DURATION ?= 10m
SOAK_USERS    ?= 50
SOAK_EVENTS   ?= 100
SOAK_THINK    ?= 1s
soak: deps
	CONVERGE_ENGINE_LIB="$(ENGINE_LIB)" CONVERGE_LOAD_DURATION=$(SOAK_DURATION) CONVERGE_LOAD_USERS=$(SOAK_USERS) \
		CONVERGE_LOAD_EVENTS=$(SOAK_EVENTS) CONVERGE_LOAD_THINK=$(SOAK_THINK) \
		$(GO) test -p 1 -count=1 -run '^TestLoad$$' -timeout 3h -v ./server

## bench-go: the go test benchmarks of the store (one package at a time, so they do not compete for the 2 cores)
bench-go: deps
	CONVERGE_ENGINE_LIB="$(ENGINE_LIB)" $(GO) test -p 1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -benchmem -timeout 60m ./warehouse/...

## fmt: gofmt and templ fmt in place
fmt: templ
	gofmt -w $$(git ls-files --cached --others --exclude-standard -- '*.go' | grep -v '_templ\.go$$')
	$(TEMPL) fmt .

## clean: remove build outputs (./bin); keeps $(DATA_DIR) and the chDB cache
clean:
	rm -rf bin
	$(GO) clean -testcache
