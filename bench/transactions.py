#!/usr/bin/env python3
"""`make bench`, transactions (issue 13 acceptance 6): a transactional producer committing a
transaction every 100 ms against an idempotent producer on the same load, one broker, in
one run. Both are librdkafka (confluent-kafka), acks=all, 1 KiB values over 6 partitions,
linger 5 ms; each round runs one side then the other (taking turns at going first), and the ratio of the medians of
acknowledged MB/s is reported (target ≥ 0.8). Writes target/bench/transactions.md and the
"transactions" section of docs/BENCHMARKS.md.
"""
import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from suite import OUT, RETENTION, SLUICE, BrokerProcess, machine, update_docs

BEGIN, END = "<!-- transactions:begin -->", "<!-- transactions:end -->"
PARTITIONS, VALUE_BYTES, TRANSACTION_MS = 6, 1024, 100
PRODUCER = {"linger.ms": 5, "batch.size": 1 << 20, "compression.type": "none", "acks": "all",
            "queue.buffering.max.kbytes": 1 << 20}


def run_side(address, topic, transactional, seconds, round_number, client_config=None):
    """Produces for `seconds`; returns (acknowledged MB/s, commit latencies in ms).
    `client_config` adds librdkafka settings (security, for bench/security.py)."""
    from confluent_kafka import Producer
    acknowledged = [0]

    def on_delivery(error, _message):
        if error is None:
            acknowledged[0] += VALUE_BYTES

    config = {"bootstrap.servers": address, "enable.idempotence": True, **PRODUCER, **(client_config or {})}
    if transactional:
        config["transactional.id"] = f"bench-{round_number}"
    producer = Producer(config)
    value = b"v" * VALUE_BYTES
    commits = []
    if transactional:
        producer.init_transactions(30)
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if transactional:
            producer.begin_transaction()
        window_end = min(deadline, time.perf_counter() + TRANSACTION_MS / 1000)
        while time.perf_counter() < window_end:
            for _ in range(256):
                try:
                    producer.produce(topic, value=value, on_delivery=on_delivery)
                except BufferError:
                    producer.poll(0.001)
            producer.poll(0)
        if transactional:
            committing = time.perf_counter()
            producer.commit_transaction(60)  # flushes, then EndTxn
            commits.append((time.perf_counter() - committing) * 1000)
    producer.flush(60)
    elapsed = time.perf_counter() - started
    return acknowledged[0] / elapsed / 1e6, commits


def take_turns(rounds, sides, run):
    """Runs `run(side, round_number)` (acknowledged MB/s) for every side in each round,
    taking turns at going first: the side that follows meets the retention deletes (and
    their discards) of the one before. Returns the rates by side."""
    rates = {side: [] for side in sides}
    for round_number in range(rounds):
        for side in sides if round_number % 2 == 0 else list(reversed(sides)):
            rates[side].append(run(side, round_number))
            print(f"round {round_number + 1} {side}: {rates[side][-1]:.1f} MB/s", flush=True)
    return rates


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sluice-txn-bench-"))
    broker = BrokerProcess("transactions", lambda port: [
        str(SLUICE), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(base / "data"), "--cores", "2",
        *RETENTION])
    commit_ms = []
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": broker.address, "log_level": 0})
        admin.create_topics([NewTopic("txn-bench", PARTITIONS)])["txn-bench"].result(30)
        def run(side, round_number):
            rate, commits = run_side(broker.address, "txn-bench", side == "transactional", args.seconds, round_number)
            commit_ms.extend(commits)
            return rate
        results = take_turns(args.rounds, ["idempotent", "transactional"], run)
    finally:
        broker.stop()
        subprocess.run(["rm", "-rf", str(base)])
    idempotent, transactional = (statistics.median(results[s]) for s in ("idempotent", "transactional"))
    ratio = transactional / idempotent
    verdict = "meets" if ratio >= 0.8 else "misses"
    rounds = lambda side: ", ".join(f"{r:.1f}" for r in results[side])  # noqa: E731
    markdown = "\n".join([
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {machine()}; broker and producer share "
        "the machine's cores.",
        "",
        f"Command: `make bench` (= `bench/transactions.py --seconds {args.seconds} --rounds {args.rounds}`). "
        f"confluent-kafka (librdkafka) producers, acks=all, {VALUE_BYTES}-byte values over {PARTITIONS} "
        "partitions, linger 5 ms, no compression, one broker (`--cores 2`, default flush policy: fsync before "
        f"the ack). The transactional side commits a transaction every {TRANSACTION_MS} ms; each round runs "
        "both sides one after the other, taking turns at going first.",
        "",
        "| producer | acknowledged MB/s (median) | rounds |",
        "|---|---|---|",
        f"| idempotent | {idempotent:.1f} | {rounds('idempotent')} |",
        f"| transactional, {TRANSACTION_MS} ms transactions | {transactional:.1f} | {rounds('transactional')} |",
        "",
        f"Ratio transactional / idempotent: **{ratio:.2f}** ({verdict} the ≥ 0.8 target). "
        f"Commit (flush + EndTxn) latency over {len(commit_ms)} transactions: p50 "
        f"{percentile(commit_ms, 0.5):.1f} ms, p99 {percentile(commit_ms, 0.99):.1f} ms.",
        "",
    ])
    (OUT / "transactions.md").write_text(markdown)
    print(markdown)
    update_docs(markdown, BEGIN, END, "Transactions against idempotence (`make bench`)")


if __name__ == "__main__":
    main()
