# sluice: the two commands a newcomer needs are `make run` and `make test`.
# `make test` also installs what the client tests need: kcat (apt) and Python clients (.venv).

CARGO ?= cargo
DATA_DIR ?= ./data
BENCH_DIR ?= ./bench-data
BENCH_SECONDS ?= 3

.PHONY: run build test lint unit clients client-deps soak bench bench-storage bench-clients fuzz fmt clean

## Build and start a single-node sluice on ./data.
run: build
	./target/release/sluice serve --data-dir $(DATA_DIR) --schema-registry-listen 127.0.0.1:8081

build:
	$(CARGO) build --release --bin sluice

## Everything CI runs: lints, then every test (unit, property, crash, corruption), then
## real Kafka clients (kcat, confluent-kafka, kafka-python, aiokafka, kafkajs) against a real broker.
test: lint unit clients

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

VENV ?= .venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

client-deps:
	command -v kcat >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq kcat)
	[ -x $(VENV)/bin/python ] || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tools/tests/clients/requirements.txt
	command -v npm >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm)
	npm ci --prefix tools/tests/clients/js --no-audit --no-fund --loglevel=error

clients: build client-deps
	SLUICE_BIN=target/release/sluice $(VENV)/bin/python -m pytest -q -p no:warnings tools/tests/clients

## The soak harness: one broker under the client tests' mix (producers, consumer groups,
## topic churn with retention and compaction, raw connections, the load generator) with
## SIGSTOP stalls and SIGKILL restarts, for SOAK_SECONDS; fails on a broker that dies by
## itself or an acknowledged record lost. `make test` runs 60 s of it (test_soak.py).
SOAK_SECONDS ?= 600
soak: build client-deps
	SLUICE_BIN=target/release/sluice $(VENV)/bin/python tools/tests/clients/soak.py --seconds $(SOAK_SECONDS) --work-dir target/soak

## The Kafka benchmark suite with the bundled load generator (`sluice bench`): max ingest,
## e2e latency at 50% of sluice's max, consume MB/s; against tansu too when TANSU_BIN names a
## tansu binary; librdkafka's own producer on the same load (built by bench/librdkafka/build.sh
## when apt and the Debian source archive are reachable); broker RSS at max for 60 s. Then
## bench/stability.py: broker CPU-s per GB at max, e2e at 10% and 50% of max with and without
## retention deletes, catch-up consume vs raw O_DIRECT read, idle CPU with 10 000 partitions.
## Then bench/cluster.py: 3 brokers RF 3 acks=all against one (ingest, CPU per GB, e2e p99 at
## half of max, failover time over 10 leader kills). Then bench/transactions.py: a
## transactional producer (100 ms transactions) against an idempotent one on the same load.
## Then bench/schema_registry.py (lookups and registrations per second), and bench/security.py:
## max ingest over SASL_SSL (TLS + SCRAM) against PLAINTEXT on the same load.
## Writes target/bench/ and the matching sections of docs/BENCHMARKS.md.
SUITE_SECONDS ?= 20
bench: build client-deps
	bench/librdkafka/build.sh || echo "librdkafka's benchmark could not be built; the comparison is skipped"
	bench/suite.py --seconds $(SUITE_SECONDS)
	bench/stability.py --seconds $(SUITE_SECONDS)
	$(VENV)/bin/python bench/cluster.py --seconds $(SUITE_SECONDS)
	$(VENV)/bin/python bench/transactions.py --seconds $(SUITE_SECONDS)
	$(VENV)/bin/python bench/schema_registry.py --seconds 10
	$(VENV)/bin/python bench/security.py --seconds $(SUITE_SECONDS)

## Storage benchmark (engine vs the raw O_DIRECT bandwidth of the same disk).
## Results are printed and written to target/bench/storage.md.
bench-storage: build
	mkdir -p target/bench
	./target/release/sluice bench storage --data-dir $(BENCH_DIR) --seconds $(BENCH_SECONDS) \
		--markdown target/bench/storage.md

## librdkafka's producer against sluice (and tansu when TANSU_BIN is set), same run.
CLIENT_BENCH_SECONDS ?= 20
bench-clients: build client-deps
	bench/clients/run.sh $(CLIENT_BENCH_SECONDS) target/bench/clients.md

## Fuzz the decoders (needs `cargo install cargo-fuzz`); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= batch_decode segment_recovery request_decode admin_input registry_schema sasl_messages
fuzz:
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(BENCH_DIR)
