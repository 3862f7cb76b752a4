# sluice: the two commands a newcomer needs are `make run` and `make test`.
# Everything here uses only the Rust toolchain (cargo) and what it downloads from crates.io.

CARGO ?= cargo
DATA_DIR ?= ./data
BENCH_DIR ?= ./bench-data
BENCH_SECONDS ?= 3

.PHONY: run build test lint unit bench fuzz fmt clean

## Build and start a single-node sluice on ./data.
run: build
	./target/release/sluice serve --data-dir $(DATA_DIR)

build:
	$(CARGO) build --release --bin sluice

## Everything CI runs: lints, then every test (unit, property, crash, corruption).
test: lint unit

lint:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit:
	$(CARGO) test --workspace --locked

## Storage benchmark (engine vs the raw O_DIRECT bandwidth of the same disk).
## Results are printed and written to target/bench/storage.md.
bench: build
	mkdir -p target/bench
	./target/release/sluice bench storage --data-dir $(BENCH_DIR) --seconds $(BENCH_SECONDS) \
		--markdown target/bench/storage.md

## Fuzz the decoders (needs `cargo install cargo-fuzz`); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= batch_decode segment_recovery
fuzz:
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(BENCH_DIR)
