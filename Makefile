# ssogate — build, test, benchmark.
GO       ?= go
PKGS     := ./...
BIN      := bin/ssogate

.PHONY: all build test test-deps fmt-check vet fuzz fuzz-short bench bench-go xcaddy-cmd clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ssogate

# make test: installs what the tests need, then format check, vet, and
# every test with the race detector.
test: test-deps fmt-check vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	$(MAKE) fuzz-short

# Fuzz targets: package and function. make test runs each briefly;
# make fuzz runs each for FUZZTIME.
FUZZ_TARGETS := ./policy:FuzzSafeReturnTo ./policy:FuzzNormalizeDomain ./policy:FuzzNormalizeEmail \
	./scim:FuzzSCIMRequests ./caddymodule:FuzzCaddyfile ./connector/saml:FuzzFinish
FUZZTIME ?= 2m

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg >/tmp/ssogate-fuzz.log 2>&1 || { cat /tmp/ssogate-fuzz.log; exit 1; }; \
	done

test-deps:
	./scripts/install-test-deps.sh chromium

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# make bench: end-to-end throughput (wrk) of ssogate on bolt and on Redis
# against a bare Caddy reverse_proxy, in one run, as ratios; then the Go
# benchmarks of the hot paths. Results: bench/results/latest.json.
bench: build
	./scripts/install-test-deps.sh wrk
	$(GO) run ./bench -bin $(BIN)
	$(MAKE) bench-go

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./session/ ./caddymodule/ ./store/storetest/ ./policy/
	SSOGATE_REVOCATION_N=1000 $(GO) test -count=1 -v -run 'TestRevocationLatencyRedis|TestCachedSessionMemory|TestLookupCostIsFlat' ./session/ ./store/storetest/ | grep -E '^(=== RUN|--- |\s+\S+_test.go)'


# Prints the xcaddy command for a custom Caddy build, from xcaddy.json.
xcaddy-cmd:
	@$(GO) run ./scripts/xcaddycmd xcaddy.json

clean:
	rm -rf bin
