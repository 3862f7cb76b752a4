#!/usr/bin/env python3
"""`make bench`, security (issue 15 acceptance 5): maximum ingest over SASL_SSL (TLS 1.3,
SCRAM-SHA-512) against PLAINTEXT on the same load, one broker with both listeners, in one
run. librdkafka (confluent-kafka) producers as in bench/transactions.py (idempotent, acks=all,
1 KiB values over 6 partitions, linger 5 ms); each round runs both sides, taking turns at
going first; the ratio of the medians of acknowledged MB/s is reported (target ≥ 0.7: TLS
costs CPU on the cores the broker and the producer share). Writes target/bench/security.md
and the "security" section of docs/BENCHMARKS.md.

The same comparison runs with the bundled load generator (`sluice bench produce`, the
suite's load, its rustls client over SASL_SSL), whose own TLS costs far less than
librdkafka's OpenSSL path. A last phase produces at a fixed rate (the librdkafka
producers, paced) and reports the CPU that the broker and the producer process spend per
GB on each side: at max ingest both share the two cores, so that split says whose TLS the
ratio pays for.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite import LOAD, OUT, RETENTION, ROOT, SLUICE, BrokerProcess, free_port, machine, update_docs
from transactions import PARTITIONS, PRODUCER, VALUE_BYTES, run_side, take_turns

sys.path.insert(0, str(ROOT / "tools" / "tests" / "clients"))
from certificates import make_all  # noqa: E402

BEGIN, END = "<!-- security:begin -->", "<!-- security:end -->"
PASSWORD = "bench-secret"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fixed-rate", type=float, default=200, help="MB/s of the CPU-per-GB phase")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sluice-security-bench-"))
    certs = make_all(base)
    sasl_ssl_port = free_port()
    data_dir = base / "data"
    broker = BrokerProcess("security", lambda port: [
        str(SLUICE), "serve", "--data-dir", str(data_dir), "--cores", "2", *RETENTION,
        "--listeners", f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sasl_ssl_port}",
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        "--sasl-mechanisms", "SCRAM-SHA-512",
        # The ACL authorizer is on (a SASL listener): both principals may do everything.
        "--super-users", "User:bench;User:ANONYMOUS"])
    subprocess.run([str(SLUICE), "admin", "--data-dir", str(data_dir), "user", "create", "bench", "--mechanism",
                    "SCRAM-SHA-512", "--password-stdin"], input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True, timeout=60)
    sides = {
        "PLAINTEXT": (broker.address, {}),
        "SASL_SSL": (f"127.0.0.1:{sasl_ssl_port}", {
            "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "bench",
            "sasl.password": PASSWORD, "ssl.ca.location": str(certs / "ca.pem")}),
    }
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": broker.address, "log_level": 0})
        admin.create_topics([NewTopic("security-bench", PARTITIONS)])["security-bench"].result(30)
        def run(side, round_number):
            address, config = sides[side]
            return run_side(address, "security-bench", False, args.seconds, round_number, config)[0]
        results = take_turns(args.rounds, list(sides), run)
        bundled_flags = {
            "PLAINTEXT": ["-b", broker.address],
            "SASL_SSL": ["-b", f"127.0.0.1:{sasl_ssl_port}", "--security-protocol", "SASL_SSL", "--sasl-mechanism",
                         "SCRAM-SHA-512", "--sasl-username", "bench", "--tls-ca", str(certs / "ca.pem")],
        }
        bundled = take_turns(args.rounds, list(sides),
                             lambda side, _round: bundled_produce(bundled_flags[side], args.seconds))
        cpu = {side: [] for side in sides}
        for round_number in range(2):
            for side in sides if round_number == 0 else reversed(list(sides)):
                address, config = sides[side]
                cpu[side].append(cpu_per_gb(broker.process.pid, address, config, args.fixed_rate, 10))
                print(f"fixed rate {side}: broker {cpu[side][-1][0]:.2f}, producer {cpu[side][-1][1]:.2f} CPU-s/GB",
                      flush=True)
    finally:
        broker.stop()
        subprocess.run(["rm", "-rf", str(base)])
    plaintext, secured = (statistics.median(results[s]) for s in ("PLAINTEXT", "SASL_SSL"))
    ratio = secured / plaintext
    verdict = "meets" if ratio >= 0.7 else "misses"
    rounds = lambda side: ", ".join(f"{r:.1f}" for r in results[side])  # noqa: E731
    bundled_plaintext, bundled_secured = (statistics.median(bundled[s]) for s in ("PLAINTEXT", "SASL_SSL"))
    bundled_ratio = bundled_secured / bundled_plaintext
    bundled_verdict = "meets" if bundled_ratio >= 0.7 else "misses"
    bundled_rounds = lambda side: ", ".join(f"{r:.1f}" for r in bundled[side])  # noqa: E731
    markdown = "\n".join([
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC on {machine()}; broker and producer share "
        "the machine's cores.",
        "",
        f"Command: `make bench` (= `bench/security.py --seconds {args.seconds} --rounds {args.rounds}`). "
        f"confluent-kafka (librdkafka) idempotent producers, acks=all, {VALUE_BYTES}-byte values over "
        f"{PARTITIONS} partitions, linger 5 ms, no compression, one broker (`--cores 2`, fsync before the ack) "
        "with a PLAINTEXT and a SASL_SSL listener (TLS 1.3 via rustls/ring, SCRAM-SHA-512) and the ACL "
        "authorizer on; each round runs both sides, taking turns at going first.",
        "",
        "| listener | acknowledged MB/s (median) | rounds |",
        "|---|---|---|",
        f"| PLAINTEXT | {plaintext:.1f} | {rounds('PLAINTEXT')} |",
        f"| SASL_SSL | {secured:.1f} | {rounds('SASL_SSL')} |",
        "",
        f"Ratio SASL_SSL / PLAINTEXT: **{ratio:.2f}** ({verdict} the ≥ 0.7 target).",
        "",
        f"The bundled load generator on the same broker (`sluice bench produce {' '.join(LOAD)} "
        f"--duration {args.seconds}`, over SASL_SSL with `--security-protocol SASL_SSL --sasl-mechanism "
        "SCRAM-SHA-512`), rounds taking turns as above:",
        "",
        "| listener | acknowledged MB/s (median) | rounds |",
        "|---|---|---|",
        f"| PLAINTEXT | {bundled_plaintext:.1f} | {bundled_rounds('PLAINTEXT')} |",
        f"| SASL_SSL | {bundled_secured:.1f} | {bundled_rounds('SASL_SSL')} |",
        "",
        f"Ratio SASL_SSL / PLAINTEXT: **{bundled_ratio:.2f}** ({bundled_verdict} the ≥ 0.7 target).",
        "",
        f"At a fixed {args.fixed_rate:.0f} MB/s (same producers, paced; mean of 2 runs per side), CPU-seconds per GB:",
        "",
        "| listener | broker | producer process (Python + librdkafka) |",
        "|---|---|---|",
        *(f"| {side} | {statistics.mean(b for b, _ in cpu[side]):.2f} | {statistics.mean(p for _, p in cpu[side]):.2f} |"
          for side in sides),
        "",
    ])
    (OUT / "security.md").write_text(markdown)
    print(markdown)
    update_docs(markdown, BEGIN, END, "Security: SASL_SSL against PLAINTEXT (`make bench`)")


def bundled_produce(connection_flags, seconds):
    """`sluice bench produce` with the suite's load for `seconds`: acknowledged MB/s."""
    report = OUT / "security-bundled.json"
    env = {**os.environ, "SLUICE_SASL_PASSWORD": PASSWORD}
    subprocess.run([str(SLUICE), "bench", "produce", *connection_flags, "-t", "security-bench-bundled", *LOAD,
                    "--duration", str(seconds), "--json", str(report)], env=env, check=True, capture_output=True,
                   timeout=seconds + 120)
    return json.loads(report.read_text())["report"]["produce"]["mb_per_s"]


def cpu_per_gb(broker_pid, address, client_config, rate_mb, seconds):
    """Produces `rate_mb` MB/s for `seconds` (paced every 10 ms); returns the broker's and
    this process's (the producer's) CPU-seconds per acknowledged GB."""
    from confluent_kafka import Producer
    acknowledged = [0]

    def on_delivery(error, _message):
        if error is None:
            acknowledged[0] += VALUE_BYTES

    producer = Producer({"bootstrap.servers": address, "enable.idempotence": True, **PRODUCER, **client_config})
    value = b"v" * VALUE_BYTES
    producer.produce("security-bench", value=value, on_delivery=on_delivery)
    producer.flush(30)  # connected and authenticated before the clock starts
    per_tick = int(rate_mb * 1e6 / VALUE_BYTES / 100)
    broker_before, producer_before, acknowledged_before = broker_cpu(broker_pid), own_cpu(), acknowledged[0]
    started = tick = time.perf_counter()
    while time.perf_counter() < started + seconds:
        for _ in range(per_tick):
            try:
                producer.produce("security-bench", value=value, on_delivery=on_delivery)
            except BufferError:
                producer.poll(0.001)
        producer.poll(0)
        tick += 0.01
        time.sleep(max(0.0, tick - time.perf_counter()))
    producer.flush(60)
    gigabytes = (acknowledged[0] - acknowledged_before) / 1e9
    return (broker_cpu(broker_pid) - broker_before) / gigabytes, (own_cpu() - producer_before) / gigabytes


def broker_cpu(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
