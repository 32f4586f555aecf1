SHELL := /bin/bash
# pico-hsm-tool. `make demo` rehearses a ceremony on the built-in simulated
# device; `make test` runs every test, the end-to-end tests through pcscd,
# vsmartcard-vpcd and OpenSC included (CI sets PICO_HSM_E2E=require so that
# they cannot be skipped).

GO      ?= go
BIN     := bin/pico-hsm-tool
PKGS    := ./...
# Debian packages the build and the tests need.
DEB_BUILD := libpcsclite-dev pkg-config gcc libc6-dev
DEB_E2E   := pcscd vsmartcard-vpcd opensc iproute2 openssl
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build test unit e2e vet cross fmt demo deps deps-e2e bench clean fuzz fuzz-short

all: build

# The commit and whether the tree was modified go into the binary
# (-buildvcs=auto, whatever GOFLAGS says); VERSION=x.y.z sets the release
# version that --version, version --json and status --json report.
VERSION ?=
LDFLAGS := $(if $(VERSION),-X github.com/pico-hsm-tool/pico-hsm-tool/internal/version.Version=$(VERSION))

build:
	$(GO) build -buildvcs=auto -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/pico-hsm-tool

# Install what is missing, apt-get update first.
deps:
	@missing=$$(for p in $(DEB_BUILD); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

deps-e2e: deps
	@missing=$$(for p in $(DEB_E2E); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; fi

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# All tests. The end-to-end tests start their own pcscd in private
# namespaces (root, or unprivileged user namespaces). Where that cannot
# work they skip with "E2E SKIPPED"; with PICO_HSM_E2E=require (set by
# .ci/run) internal/testbed fails them instead, so CI cannot pass without
# having run them.
# The tool must build for Windows too (PC/SC through winscard.dll, no
# cgo); platform code lives in small files with build tags.
cross:
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/pico-hsm-tool
	GOOS=windows GOARCH=amd64 $(GO) build ./...

test: deps-e2e vet cross
	$(GO) test -count=1 -timeout 20m $(PKGS)

unit:
	$(GO) test -count=1 -short $(PKGS)

# Every fuzz target (func FuzzXxx in a _test.go file, found by
# scripts/fuzz.sh) for FUZZTIME each; `make test` runs their seed corpora.
FUZZTIME ?= 20s
fuzz:
	GO=$(GO) ./scripts/fuzz.sh $(FUZZTIME)

# Every fuzz target briefly, as .ci/run does after `make test`.
fuzz-short:
	GO=$(GO) ./scripts/fuzz.sh 3s

# Rehearse a ceremony on the simulated device (no hardware, no pcscd).
demo: deps build
	./scripts/demo.sh $(BIN)

# The KDF benchmark against OpenSSL's EVP_BytesToKey (needs libssl-dev,
# installed by the script) and a bare MD5 loop; prints the ratios.
bench:
	./bench/kdf.sh

clean:
	rm -rf bin
