#!/usr/bin/env bash
# Max ingest against a fresh broker and the broker's CPU-seconds per GB over it (utime +
# stime from /proc), after a 1 s run that creates the topic. For alternating runs of two
# builds or settings: bench/cpu_per_gb.sh BINARY [SECONDS]; SERVE_ARGS adds serve flags.
# Load: the suite's (6 partitions, 1 KiB, acks=all, 1 MiB batches, linger 5 ms).
set -euo pipefail
bin=$1 seconds=${2:-10}
work=$(mktemp -d) broker=
trap 'kill $broker 2>/dev/null || true; rm -rf "$work"' EXIT
load=(--partitions 6 --message-size 1024 --acks all --batch-bytes 1048576 --linger-ms 5 --max-in-flight 5 --compression none)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" ${SERVE_ARGS:-} >"$work/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
cpu() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
"$bin" bench produce -b "127.0.0.1:$port" -t t "${load[@]}" -d 1 --warmup 0 >/dev/null
before=$(cpu)
"$bin" bench produce -b "127.0.0.1:$port" -t t "${load[@]}" -d "$seconds" --warmup 0 --json "$work/run.json" >/dev/null
after=$(cpu)
python3 - "$work/run.json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
produce = json.load(open(sys.argv[1]))["report"]["produce"]
before, after, ticks = (float(x) for x in sys.argv[2:])
print(f"{produce['mb_per_s']:.1f} MB/s, broker {(after - before) / ticks / (produce['bytes'] / 1e9):.3f} CPU-s/GB")
PY
