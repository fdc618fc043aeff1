# bccguard — build, run and test.
#   make test   installs the test peers (Postfix smtp-sink/smtp-source, swaks)
#               when missing, vets, and runs every test including the
#               end-to-end suite against the real binary.
#   make build  builds bin/bccguard
#   make run    builds and runs `bccguard serve` on the built-in defaults

GO ?= go
GOTESTFLAGS ?=

.PHONY: all build run test test-deps vet clean

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

clean:
	rm -rf bin
