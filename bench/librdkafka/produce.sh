#!/usr/bin/env bash
# Runs librdkafka's own C producer benchmark (examples/rdkafka_performance.c, built by
# build.sh next to this file) against a broker for a fixed time, and prints one line:
#
#   librdkafka msgs_per_s=<n> mb_per_s=<n> messages=<n> bytes=<n> seconds=<n>
#
# Usage: bench/librdkafka/produce.sh BROKER TOPIC SECONDS MESSAGE_BYTES [extra rdkafka_performance args]
#   e.g. bench/librdkafka/produce.sh 127.0.0.1:9092 bench-topic 10 1024
# Extra args go after ours, so a later -X overrides ours (librdkafka applies them in order);
# leave out -u, -q and -c, which change or end the output this script parses.
#
# Producer settings (all explicit, to be mirrored by our own load generator):
#   -P                 producer mode
#   -t TOPIC           one topic; no -p, so every message is produced to RD_KAFKA_PARTITION_UA
#                      (the partitioner picks)
#   -b BROKER          bootstrap broker
#   -s MESSAGE_BYTES   value size; no key (-k not given), no headers; the value is the pattern
#                      "librdkafka_performance testing!" repeated; one buffer, passed without
#                      copy (no RD_KAFKA_MSG_F_COPY)
#   -X acks=all        (same as -a -1) the leader answers after the append is done
#   -X linger.ms=5     (the example's own default is 1000, set before the -X flags are read)
#   -X batch.size=1048576 and -X message.max.bytes=1048576
#                      librdkafka caps a partition's record batch at MIN(batch.size,
#                      message.max.bytes) bytes, framing included (message.max.bytes defaults
#                      to 1000000, so both are set); the broker's default message.max.bytes is
#                      also 1048576
#   -X batch.num.messages=1000000   (its maximum) so that only batch.size caps a batch
#   -X max.in.flight.requests.per.connection=5
#                      per broker connection, not per partition: librdkafka 2.0.2 puts one
#                      partition's batch in each ProduceRequest (PartitionArrayCnt is always 1),
#                      so at most 5 batches are in flight to the broker in all
#   -X compression.codec=none
#   -X enable.idempotence=false      (the default, made explicit)
#   -X partitioner=random -X sticky.partitioning.linger.ms=0
#                      each unkeyed message goes to a uniformly random partition of all the
#                      topic's partitions (sticky partitioning, on by default at 2 x linger.ms,
#                      would send 10 ms runs of messages to one partition at a time)
#   left at their defaults: queue.buffering.max.messages=100000 and
#   queue.buffering.max.kbytes=1048576 (the local queue; when full, produce() returns
#   QUEUE_FULL and the example polls 10 ms and retries: reported as "produce failures"),
#   request.timeout.ms=30000, and the example's own message.send.max.retries=3,
#   retry.backoff.ms=500.
#
# Time bound: rdkafka_performance has no duration flag (only -c COUNT), so it runs with no -c
# (produce until stopped) under `timeout -s INT SECONDS`. On SIGINT its producer loop stops, it
# does not wait for the messages still queued or in flight, destroys the handle and prints its
# summary (a second SIGINT would exit without one: timeout sends only one). `timeout -k` kills
# it if it is still running GRACE seconds later; then there is no summary and this script fails.
#
# Figures, from rdkafka_performance's own summary line (print_stats(), _OTYPE_SUMMARY):
#   "% <produced> messages produced (<bytes> bytes), <delivered> delivered (offset <o>,
#    <failed> failed) in <ms>ms: <n> msgs/s and <x> MB/s, <n> produce failures, <n> in queue,
#    none compression"
#   - counted messages are those whose delivery report came back OK (acks=all: acknowledged
#     by the broker) and was served by rd_kafka_poll() before the stop; those acknowledged
#     while shutting down are not counted (a small underestimate: the requests in flight at
#     the stop, at most 5 batches; measured on sluice: 3 to 5 batches of 1014 x 1 KiB,
#     < 0.1% of a 10 s run).
#   - elapsed time t_total runs from just before the first produce() (after the handle and
#     the topic are made, before the first metadata answer) to the summary, i.e. SECONDS plus
#     the shutdown (rd_kafka_destroy).
#   - msgs/s = delivered * 1000000 / t_total_us, integer division.
#   - MB/s = bytes_delivered / t_total_us, i.e. bytes per microsecond = 10^6 bytes/s
#     (decimal MB, not MiB), and bytes_delivered is the sum of rkmessage->len: the VALUE
#     bytes only (no key, headers, record or batch framing, or protocol overhead). Printed
#     with 2 decimals.
#   Our line: msgs_per_s and mb_per_s are the summary's own figures; messages = delivered;
#   bytes = delivered * MESSAGE_BYTES (= bytes_delivered, all values being MESSAGE_BYTES
#   long; the summary's "(N bytes)" counts produced, not delivered, messages); seconds =
#   t_total.
set -euo pipefail

if [ "$#" -lt 4 ]; then
    sed -n 's/^# Usage: /Usage: /p' "${BASH_SOURCE[0]}" >&2
    exit 2
fi
BROKER="$1"
TOPIC="$2"
SECONDS_ARG="$3"
MESSAGE_BYTES="$4"
shift 4
GRACE="${GRACE:-30}"

[[ "$SECONDS_ARG" =~ ^[0-9]+$ && "$SECONDS_ARG" -gt 0 ]] || { echo "produce.sh: SECONDS must be a positive integer" >&2; exit 2; }
[[ "$MESSAGE_BYTES" =~ ^[0-9]+$ ]] || { echo "produce.sh: MESSAGE_BYTES must be an integer" >&2; exit 2; }

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN="$ROOT/target/bench/rdkafka_performance"
[ -x "$BIN" ] || "$HERE/build.sh" >&2

LOG="$(mktemp "${TMPDIR:-/tmp}/rdkafka_performance.XXXXXX")"
trap 'rm -f "$LOG"' EXIT

args=(
    -P -t "$TOPIC" -b "$BROKER" -s "$MESSAGE_BYTES"
    -X acks=all
    -X linger.ms=5
    -X batch.size=1048576
    -X message.max.bytes=1048576
    -X batch.num.messages=1000000
    -X max.in.flight.requests.per.connection=5
    -X compression.codec=none
    -X enable.idempotence=false
    -X partitioner=random
    -X sticky.partitioning.linger.ms=0
    "$@"
)
echo "produce.sh: rdkafka_performance ${args[*]} (for ${SECONDS_ARG} s)" >&2

rc=0
timeout -s INT -k "$GRACE" "$SECONDS_ARG" "$BIN" "${args[@]}" > "$LOG" 2>&1 || rc=$?
# Its own output (progress once a second, then the summary) goes to stderr.
cat "$LOG" >&2

# 124: stopped by our SIGINT (the normal case); 0 or 1: it ended by itself (0 when every
# message was delivered). 137: killed after GRACE: the last line would be a progress line.
case "$rc" in
    0 | 1 | 124) ;;
    *) echo "produce.sh: rdkafka_performance exited with $rc (no final summary)" >&2; exit 1 ;;
esac

summary="$(grep -E '^% [0-9]+ messages produced' "$LOG" | tail -n 1 || true)"
re='^% ([0-9]+) messages produced \(([0-9]+) bytes\), ([0-9]+) delivered \(offset (-?[0-9]+), ([0-9]+) failed\) in ([0-9]+)ms: ([0-9]+) msgs/s and ([0-9.]+) MB/s'
if ! [[ "$summary" =~ $re ]]; then
    echo "produce.sh: no summary line in rdkafka_performance's output" >&2
    exit 1
fi
delivered="${BASH_REMATCH[3]}"
failed="${BASH_REMATCH[5]}"
ms="${BASH_REMATCH[6]}"
msgs_per_s="${BASH_REMATCH[7]}"
mb_per_s="${BASH_REMATCH[8]}"
bytes=$((delivered * MESSAGE_BYTES))
seconds="$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"

echo "librdkafka msgs_per_s=$msgs_per_s mb_per_s=$mb_per_s messages=$delivered bytes=$bytes seconds=$seconds"

if [ "$failed" -ne 0 ] || [ "$delivered" -eq 0 ]; then
    echo "produce.sh: $failed failed deliveries, $delivered delivered" >&2
    exit 1
fi
