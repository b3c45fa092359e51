# switchboard — build, run, test, bench.
CLAUDE_VERSION ?= 2.1.332
CLAUDE_BIN     := .cache/claude/node_modules/.bin/claude
VERSION        ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS        := -X main.version=$(VERSION)
# -parallel 4: most tests wait (for a process, a backoff, a stop grace) far
# more than they compute. On 2 cores broker -short took 34 s at the default
# (GOMAXPROCS) and 25 s at 4; 8 gained little more and starved the
# timing-bound tests on a loaded machine.
# RACE: the race detector for this module and every Go dependency, but not
# for modernc.org (SQLite and its libc, transpiled from C): instrumenting
# that code for -race (and the checkptr checks -race implies) took 40-55%
# of the CPU of the store-heavy packages (broker, models) and checks nothing
# of ours: our side of the driver (database/sql, the driver, GORM, models)
# stays instrumented. cmd/switchboard builds the daemon it tests with the
# same flags in the full run.
RACE           := -race -gcflags=modernc.org/...=-race=false
GO_TEST_FLAGS  ?= $(RACE) -timeout 20m -parallel 4

# A -race binary sleeps a second before it exits (the race runtime's
# atexit_sleep_ms), once per test binary and per switchboard a test starts;
# races are still reported when found and still fail the run.
export GORACE ?= atexit_sleep_ms=0

.PHONY: build run test test-short e2e bench bench-fleet lint claude clean

build:
	go build -ldflags '$(LDFLAGS)' -o bin/switchboard ./cmd/switchboard

# The broker daemon in the foreground, with ./switchboard.yaml (two demo
# teams in this repository) and an embedded SQLite store under ~/.switchboard.
run:
	go run -ldflags '$(LDFLAGS)' ./cmd/switchboard serve

# Every test, including those that drive the real Claude Code binary (installed
# into .cache/ by the claude target) and Debian's sshd when it is installed.
test: claude
	SWITCHBOARD_CLAUDE=$(CURDIR)/$(CLAUDE_BIN) go test $(GO_TEST_FLAGS) ./...

# Fast tests only: no real claude, no sshd.
test-short:
	go test -short $(RACE) -parallel 4 ./...

bench: claude
	SWITCHBOARD_CLAUDE=$(CURDIR)/$(CLAUDE_BIN) go run ./internal/bench -out BENCHMARKS.md

# Only the fleet section (Postgres beside SQLite, cross- beside same-broker),
# which starts its own PostgreSQL cluster; written to fleet-bench.md.
bench-fleet: claude
	SWITCHBOARD_CLAUDE=$(CURDIR)/$(CLAUDE_BIN) go run ./internal/bench -only fleet -out fleet-bench.md

lint:
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	go vet ./...

# The real Claude Code, pinned, in a git-ignored cache (no global install).
claude: $(CLAUDE_BIN)
$(CLAUDE_BIN):
	npm install --no-audit --no-fund --prefix .cache/claude @anthropic-ai/claude-code@$(CLAUDE_VERSION)
	$(CLAUDE_BIN) --version

clean:
	rm -rf bin .cache
