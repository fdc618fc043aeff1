# bccguard — build, run and test.
#   make test   installs the test peers (Postfix smtp-sink/smtp-source, swaks)
#               when missing, vets, and runs every test including the
#               end-to-end suite against the real binary.
#   make build  builds bin/bccguard
#   make run    builds and runs `bccguard serve` on the built-in defaults
#   make bench  end-to-end benchmark against a throwaway Postfix relay
#               (root; see docs/benchmarks.md)
#   make faults fault tests in full (kill -9 rounds, upstream down, disk
#               full, slow peers, 1,000 connections); a shortened form runs
#               in `make test`

GO ?= go
GOTESTFLAGS ?=

.PHONY: all build run test test-deps vet clean bench faults

all: build

build:
	$(GO) build -o bin/bccguard ./cmd/bccguard

run: build
	./bin/bccguard serve

test-deps:
	bash scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

test: test-deps vet
	$(GO) test -count=1 -timeout 20m $(GOTESTFLAGS) ./...
	cd third_party/go-smtp && $(GO) vet . && $(GO) test -count=1 $(GOTESTFLAGS) .

bench:
	GO=$(GO) bash scripts/bench.sh

faults: test-deps
	BCCGUARD_FAULTS=full $(GO) test -count=1 -v -timeout 15m -run '^TestFaults' ./tests/faults

clean:
	rm -rf bin
