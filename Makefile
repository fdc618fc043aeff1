# bccguard — build, run and test.
#   make test   installs the test peers (Postfix smtp-sink/smtp-source, swaks)
#               when missing, vets (go vet, staticcheck), and runs every
#               test including the end-to-end suite against the real binary.
#   make build  builds bin/bccguard
#   make run    builds and runs `bccguard serve` on the built-in defaults
#   make bench  end-to-end benchmark against a throwaway Postfix relay
#               (root; see docs/benchmarks.md)
#   make bench-limits  what ten rate limits cost: pass-through and p99 of
#               the 250 against a relay without limits (root, for smtp-sink)
#   make faults fault tests in full (kill -9 rounds, upstream down, disk
#               full, slow peers, 1,000 connections); a shortened form runs
#               in `make test`
#   make image  the container image bccguard:$(VERSION), offline with podman:
#               the Dockerfile's runtime stage on a local base (scripts/image.sh;
#               with a registry, `docker build .` builds it on distroless)

GO ?= go
GOTESTFLAGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= bccguard:$(VERSION)
PODMAN ?= podman

.PHONY: all build run test test-deps vet clean bench bench-limits faults image

all: build

build:
	$(GO) build -o bin/bccguard ./cmd/bccguard

run: build
	./bin/bccguard serve

# go mod download fills the module cache with the dependencies and the
# tools go.mod names (staticcheck), so vet needs no network.
test-deps:
	bash scripts/install-test-deps.sh
	$(GO) mod download

# third_party/go-smtp is a module of its own: ./... leaves it out, and it
# is upstream's code (vetted with the test target).
vet:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: test-deps vet
	$(GO) test -count=1 -timeout 20m $(GOTESTFLAGS) ./...
	cd third_party/go-smtp && $(GO) vet . && $(GO) test -count=1 $(GOTESTFLAGS) .

bench:
	GO=$(GO) bash scripts/bench.sh

bench-limits: test-deps
	BCCGUARD_BENCH=1 $(GO) test -count=1 -v -timeout 15m -run '^TestBenchRateLimits$$' ./tests/bench

faults: test-deps
	BCCGUARD_FAULTS=full $(GO) test -count=1 -v -timeout 15m -run '^TestFaults' ./tests/faults

image:
	GO="$(GO)" PODMAN="$(PODMAN)" VERSION="$(VERSION)" bash scripts/image.sh "$(IMAGE)"

clean:
	rm -rf bin
