#!/usr/bin/env bash
# Two sluice builds on the same load, alternating, in one run: max ingest (the suite's load:
# 1 KiB values, 6 partitions, acks=all) and a consume of what was written. Prints one line
# per run and the mean ratio NEW/OLD. Every load is bounded by --duration.
#   bench/compare_builds.sh OLD_BIN NEW_BIN [ROUNDS] [SECONDS]
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} seconds=${4:-10}
work=$(mktemp -d) broker=
trap 'kill $broker 2>/dev/null || true; rm -rf "$work"' EXIT
load=(--partitions 6 --message-size 1024 --acks all --batch-bytes 1048576 --linger-ms 5 --max-in-flight 5 --compression none)
run() {  # BIN LABEL ROUND: prints "LABEL produce_mb_s consume_mb_s"
    local bin=$1 label=$2 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    rm -rf "$work/data"
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/broker.log" 2>&1 &
    broker=$!
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
    "$new" bench produce -b "127.0.0.1:$port" -t t "${load[@]}" --duration "$seconds" --json "$work/p.json" >/dev/null
    "$new" bench consume -b "127.0.0.1:$port" -t t --json "$work/c.json" >/dev/null
    kill $broker; wait $broker 2>/dev/null || true
    python3 - "$label" "$work/p.json" "$work/c.json" <<'PY'
import json, sys
label, produce, consume = sys.argv[1:]
print(label, json.load(open(produce))["report"]["produce"]["mb_per_s"], json.load(open(consume))["report"]["consume"]["mb_per_s"])
PY
}
for round in $(seq "$rounds"); do
    run "$old" old "$round"
    run "$new" new "$round"
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
for column, name in [(1, "max ingest"), (2, "consume")]:
    old = statistics.mean(float(r[column]) for r in runs if r[0] == "old")
    new = statistics.mean(float(r[column]) for r in runs if r[0] == "new")
    print(f"{name}: old {old:.1f} MB/s, new {new:.1f} MB/s, new/old {new / old:.3f}")
PY
