# superset-gateway. The README's two commands are `make demo` and `make test`.
GO        ?= go
BIN       := bin/superset-gateway
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN)/staticcheck
STATICCHECK_VERSION := v0.8.2
SUPERSET_VERSION := 6.1.0
SG_CACHE  ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/superset-gateway
SUPERSET_VENV ?= $(SG_CACHE)/superset-$(SUPERSET_VERSION)/venv
export SUPERSET_VENV
# The second environment: the same Superset with Flask-AppBuilder 5.3.0,
# whose API keys (FAB_API_KEY_ENABLED) the FAB API key tests need.
SUPERSET_FAB_VERSION := 5.3.0
SUPERSET_FAB_VENV ?= $(SG_CACHE)/superset-$(SUPERSET_VERSION)-fab$(SUPERSET_FAB_VERSION)/venv
export SUPERSET_FAB_VENV

.PHONY: build run test unit e2e embedded-sdk lint fuzz fuzz-long fuzz-oracle reliability reliability-report failover-report soak bench demo superset-env tools clean image rules deploy-copies

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/superset-gateway

# The container image as a tarball (no daemon needed): `docker load -i` or
# `podman load -i` it. A static binary on an empty base, user 65532.
IMAGE_VERSION ?= dev
IMAGE_TAR ?= bin/superset-gateway-image.tar
image:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/image/superset-gateway ./cmd/superset-gateway
	$(GO) run ./deploy/cmd/sgw-image -binary bin/image/superset-gateway -version $(IMAGE_VERSION) \
	  -revision "$$(git rev-parse HEAD 2>/dev/null)" -o $(IMAGE_TAR)

run: build
	./$(BIN) serve --config deploy/examples/local.yaml

# Everything CI runs, two at a time: much of unit, e2e and fuzz is waiting
# (failovers, fault windows, soak timers, Superset starting) that the other
# target's compiles can fill. Measured on a two-core machine with empty
# caches (2026-12-05): 24.3 min one after the other on an idle machine,
# 24.8 min two at a time with a 30-minute soak running beside it. Each
# target's output is printed whole when it ends (--output-sync).
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target lint rules unit
	$(MAKE) --no-print-directory -j2 --output-sync=target e2e fuzz fuzz-oracle

unit:
	$(GO) test -race -count=1 ./...

# Alert rules and their unit tests (Debian's prometheus package: promtool).
# Fails when promtool is missing rather than skipping.
PROMTOOL ?= promtool
rules:
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && $(PROMTOOL) test rules alerts_test.yml

# The end-to-end suite against a real Superset 6.1.0 (installed on first use).
e2e: superset-env superset-env-fab embedded-sdk axe-core
	$(GO) test -tags e2e -count=1 -timeout 45m ./e2e/...

# Superset's embedded SDK from npm, for the host page of the embedding tests.
embedded-sdk:
	bash e2e/embedded/install.sh

# axe-core from npm, injected into Chromium by the pages' accessibility test.
.PHONY: axe-core
axe-core:
	bash e2e/axe/install.sh

lint: tools
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags e2e ./reliability/
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./e2e/...
	$(STATICCHECK) -tags e2e ./reliability/

tools:
	@test -x $(STATICCHECK) || GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Every fuzz target of the module under the fuzzer for FUZZTIME each, from
# its committed corpus (testdata/fuzz/<target>, also run as ordinary tests in
# `unit`) and its f.Add seeds. `make test` runs the short, bounded form;
# `make fuzz-long` the long one (a crash is written to testdata/fuzz: commit
# it with the fix).
# Counts, not durations, in make test: Go 1.26's fuzz coordinator can fail
# a target with "context deadline exceeded" when a duration ends while a
# worker is busy (go.dev/issue/75804, fixed in Go 1.27), which a loaded CI
# machine hits; a count has no deadline to race.
FUZZTIME ?= 10000x
FUZZ_LONG_TIME ?= 5m
fuzz:
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./e2e/' | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
	    echo "== $$dir $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$dir; \
	  done; done

fuzz-long:
	$(MAKE) fuzz FUZZTIME=$(FUZZ_LONG_TIME)

# The differential fuzz targets (e2e/oracle): the gateway's reading of a
# request against gunicorn + Werkzeug + Flask's, from Superset's venv, each
# for ORACLE_FUZZTIME (their committed corpora also run in `e2e`).
ORACLE_FUZZTIME ?= 5000x
ORACLE_FUZZ := FuzzOracleGuestToken FuzzOracleBearer FuzzOraclePath
fuzz-oracle: superset-env
	@set -e; for f in $(ORACLE_FUZZ); do \
	  echo "== e2e/oracle $$f"; \
	  $(GO) test -tags e2e -run '^$$' -fuzz "^$$f$$" -fuzztime $(ORACLE_FUZZTIME) ./e2e/oracle/; \
	done

# Faults between the gateway and Redis or Superset nodes (Toxiproxy), a
# Sentinel failover
# under a stream of revocations, backups restored after revocations: the
# short forms also run in `make unit`. reliability-report writes
# docs/reliability-faults.md (docs/reliability.md says what is there).
RELIABILITY_TESTS := TestRedisFaults|TestSupersetNodeFaults|TestReplicaCrash|TestSentinelFailoverKeepsAcknowledgedRevocations|TestClusterFailoverKeepsAcknowledgedRevocations|TestStoreBackupRestoreKeepsRevocations|TestMarkRestoredOnRedisReachesRunningGateways
reliability:
	$(GO) test -count=1 -v -run '^($(RELIABILITY_TESTS))$$' ./cmd/superset-gateway/ ./store/redis/ ./reliability/

FAULT_WINDOW ?= 10s
reliability-report:
	$(GO) test -count=1 -v -run '^(TestRedisFaults|TestSupersetNodeFaults)$$' ./cmd/superset-gateway/ \
	  -args -faults-window=$(FAULT_WINDOW) -faults-report=$(CURDIR)/docs/reliability-faults.md

# The Sentinel failover test with FAILOVER_ROUNDS masters killed; writes
# docs/reliability-failover.md.
FAILOVER_ROUNDS ?= 10
failover-report:
	$(GO) test -count=1 -v -timeout 0 -run '^TestSentinelFailoverKeepsAcknowledgedRevocations$$' ./store/redis/ \
	  -args -failover-rounds=$(FAILOVER_ROUNDS) -failover-report=$(CURDIR)/docs/reliability-failover.md

# The Redis Cluster failover test with CLUSTER_ROUNDS masters killed one
# after the other; writes docs/reliability-failover-cluster.md.
CLUSTER_ROUNDS ?= 6
.PHONY: cluster-failover-report
cluster-failover-report:
	$(GO) test -count=1 -v -timeout 0 -run '^TestClusterFailoverKeepsAcknowledgedRevocations$$' ./store/redis/ \
	  -args -cluster-rounds=$(CLUSTER_ROUNDS) -cluster-report=$(CURDIR)/docs/reliability-failover-cluster.md

# Two replicas on one Redis in front of the Go fake Superset under mixed
# traffic for SOAK (the 20s form runs in make unit); writes
# docs/reliability-soak.md.
SOAK ?= 30m
SOAK_RATE ?= 40
soak:
	$(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./reliability/ \
	  -args -soak=$(SOAK) -soak-rate=$(SOAK_RATE) -soak-report=$(CURDIR)/docs/reliability-soak.md

# The live heap of one replica sent JWT_PROBE distinct API JWTs (the
# 3000-token form runs in make unit); writes docs/reliability-memory.md.
JWT_PROBE ?= 40000
.PHONY: jwt-memory
jwt-memory:
	$(GO) test -count=1 -v -timeout 0 -run '^TestDistinctJWTsMemory$$' ./reliability/ \
	  -args -jwt-probe=$(JWT_PROBE) -jwt-probe-report=$(CURDIR)/docs/reliability-memory.md

# The soak's traffic against the real Superset 6.1.0 (SUPERSET_VENV, one
# node) for SOAK_REAL, with a Chromium sign-in every SOAK_REAL_BROWSER (0:
# none); on demand, not in .ci/run; writes docs/reliability-soak-real.md.
SOAK_REAL ?= 5m
SOAK_REAL_RATE ?= 8
SOAK_REAL_BROWSER ?= 20s
.PHONY: soak-real
soak-real:
	$(GO) test -tags e2e -count=1 -v -timeout 0 -run '^TestSoakReal$$' ./reliability/ \
	  -args -soak-real=$(SOAK_REAL) -soak-real-rate=$(SOAK_REAL_RATE) -soak-real-browser=$(SOAK_REAL_BROWSER) \
	  -soak-real-report=$(CURDIR)/docs/reliability-soak-real.md

# Compose and the Helm chart read only their own folders: they carry copies
# of the shipped alert rules and dashboards (TestShippedCopiesAreIdentical).
deploy-copies:
	cp deploy/prometheus/alerts.yml deploy/compose/prometheus/alerts.yml
	cp deploy/prometheus/alerts.yml deploy/helm/superset-gateway/files/alerts.yml
	cp deploy/grafana/*.json deploy/compose/grafana/dashboards/

superset-env:
	bash e2e/superset/install.sh "$(SUPERSET_VENV)"

.PHONY: superset-env-fab
superset-env-fab:
	bash e2e/superset/install.sh "$(SUPERSET_FAB_VENV)" --fab $(SUPERSET_FAB_VERSION)

bench: build
	$(GO) run ./bench/cmd/sgw-bench -gateway $(BIN)

# The demo's gateway address (DEMO_LISTEN=127.0.0.1:8090 make demo). The
# port is checked before anything else; the demo runs as a built binary,
# not under go run and exec'd by the recipe's shell, so that Ctrl-C ends it
# (exit 0) without a make error.
DEMO_LISTEN ?= 127.0.0.1:8080
demo:
	@$(GO) build -o bin/sgw-demo ./e2e/cmd/sgw-demo
	@bin/sgw-demo -check-listen -listen "$(DEMO_LISTEN)"
	@$(MAKE) --no-print-directory build superset-env embedded-sdk
	@exec bin/sgw-demo -gateway $(BIN) -listen "$(DEMO_LISTEN)"

clean:
	rm -rf bin
