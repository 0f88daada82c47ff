# The one test command: installs the third-party peers the tests talk to
# when they are missing, then vets, runs every test (with the race
# detector) and fuzzes the decoders briefly.
GO ?= go
# A count, not a duration: time-limited fuzzing can end with a spurious
# "context deadline exceeded" in this Go release.
FUZZTIME ?= 150000x

# The packages whose tests run clusters of JetStream servers: they go one
# at a time, after the others, because replication sharing two cores with
# other packages' tests slows past the tests' bounds.
CLUSTERED = ./cluster/ ./cmd/tern/

.PHONY: test deps build crash fuzz bench

test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$unformatted" || { echo "not gofmt-ed:"; echo "$$unformatted"; exit 1; }
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v -e '/cluster$$' -e '/cmd/tern$$')
	$(GO) test -race -count=1 -timeout 15m -p 1 -skip '^(TestCrashKill9|TestClusterKill9|TestClusterSessionsKill9)$$' $(CLUSTERED)
	$(MAKE) crash
	$(MAKE) fuzz

# The kill -9 tests on their own, verbose, so that their counts are
# printed: the single node's, and the cluster's (a node of three killed).
crash:
	$(GO) test -race -count=1 -timeout 10m -v -run '^(TestCrashKill9|TestClusterKill9|TestClusterSessionsKill9)$$' ./cmd/tern/

deps:
	@command -v mosquitto_pub >/dev/null && command -v mosquitto_sub >/dev/null && test -x /usr/sbin/mosquitto || { \
		echo "installing mosquitto and mosquitto-clients (test peers)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq mosquitto mosquitto-clients; }
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "installing nodejs and npm (the MQTT.js test peer runs on them)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm; }
	@test -d listener/testdata/mqttjs/node_modules/mqtt || (cd listener/testdata/mqttjs && npm ci --no-audit --no-fund)
	@test -x /usr/bin/chromium || { \
		echo "installing chromium (the dashboard's browser test drives it headless)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }
	@test -d admin/ui/testdata/node_modules/playwright-core || (cd admin/ui/testdata && npm ci --no-audit --no-fund)

build:
	$(GO) build -o bin/tern ./cmd/tern

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./packet/
	$(GO) test -run='^$$' -fuzz='^FuzzValidate$$' -fuzztime=$(FUZZTIME) ./topic/
	$(GO) test -run='^$$' -fuzz='^FuzzTrieMatch$$' -fuzztime=$(FUZZTIME) ./topic/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=30000x ./store/pebble/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=30000x ./store/jetstream/
	$(GO) test -run='^$$' -fuzz='^FuzzParseKey$$' -fuzztime=30000x ./store/jetstream/
	$(GO) test -run='^$$' -fuzz='^FuzzConnSequence$$' -fuzztime=20000x ./broker/
	$(GO) test -run='^$$' -fuzz='^FuzzSubject$$' -fuzztime=$(FUZZTIME) ./cluster/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEnvelope$$' -fuzztime=$(FUZZTIME) ./cluster/

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./packet/ ./topic/ ./broker/ ./store/pebble/ ./cluster/
