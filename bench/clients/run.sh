#!/usr/bin/env bash
# Starts a fresh sluice (and tansu, when TANSU_BIN points at a tansu 0.6.0 binary) on
# loopback, runs produce_bench.py against them in the same run, and stops them.
# Usage: bench/clients/run.sh SECONDS OUT.md
set -euo pipefail
seconds=${1:-20}
out=${2:-target/bench/clients.md}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; cp "$work"/*.log "$(dirname "$out")"/ 2>/dev/null; rm -rf "$work"' EXIT
"$root/target/release/sluice" serve --listen 127.0.0.1:29092 --data-dir "$work/data" 2> "$work/sluice.log" &
pids+=($!)
brokers=(sluice=127.0.0.1:29092)
if [ -n "${TANSU_BIN:-}" ]; then
  "$TANSU_BIN" broker --listener-url tcp://127.0.0.1:29093 --advertised-listener-url tcp://127.0.0.1:29093 \
    --storage-engine memory://tansu/ > "$work/tansu.log" 2>&1 &
  pids+=($!)
  brokers+=(tansu=127.0.0.1:29093)
fi
sleep 2
mkdir -p "$(dirname "$out")"
"$root/.venv/bin/python" "$root/bench/clients/produce_bench.py" --seconds "$seconds" "${brokers[@]}" 2>/dev/null | tee "$out"
