#!/usr/bin/env bash
# One end-to-end run against a fresh broker, with the broker's own view beside it: the
# bench's e2e percentiles, then the broker's fsync and Produce latency percentiles
# (`sluice admin metrics`). For comparing builds and settings in alternating runs.
#   bench/e2e_probe.sh BINARY RATE [SECONDS]
#   SERVE_ARGS="--spin-before-park-us 0" E2E_ARGS="--topic-config segment.bytes=33554432" bench/e2e_probe.sh ...
# Load: 6 partitions, 1 KiB, acks=all, linger 1 ms, 1 producer and 1 consumer (as
# bench/stability.py's e2e runs). Bounded by SECONDS (default 15) after 3 s of warm-up.
set -euo pipefail
bin=$1 rate=$2 seconds=${3:-15}
work=$(mktemp -d) broker=
trap 'kill $broker 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086 # the extra flags are meant to split
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" ${SERVE_ARGS:-} >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
# shellcheck disable=SC2086
"$bin" bench e2e -b "127.0.0.1:$port" -t e2e --partitions 6 --message-size 1024 --acks all \
    --batch-bytes 1048576 --linger-ms 1 --max-in-flight 5 -r "$rate" -d "$seconds" --warmup 3 \
    --json "$work/run.json" ${E2E_ARGS:-} >"$work/bench.log"
"$bin" admin --data-dir "$work/data" --json metrics >"$work/metrics.json"
python3 - "$work/run.json" "$work/metrics.json" <<'PY'
import json, sys
run, metrics = (json.load(open(path)) for path in sys.argv[1:])
produce = next(a["latency"] for a in metrics["requests"] if a["api"] == "Produce")
fields = ("p50_us", "p99_us", "p999_us", "max_us")
show = lambda figures: "/".join(f"{figures[f] / 1000:.2f}" for f in fields)
print(f"e2e p50/p99/p99.9/max {show(run['report']['e2e_latency'])} ms | broker fsync {show(metrics['fsync'])} "
      f"| broker Produce {show(produce)}")
PY
