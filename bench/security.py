#!/usr/bin/env python3
"""`make bench`, security (issue 15 acceptance 5): maximum ingest over SASL_SSL (TLS 1.3,
SCRAM-SHA-512) against PLAINTEXT on the same load, one broker with both listeners, in one
run. librdkafka (confluent-kafka) producers as in bench/transactions.py (idempotent, acks=all,
1 KiB values over 6 partitions, linger 5 ms); each round runs both sides, taking turns at
going first; the ratio of the medians of acknowledged MB/s is reported (target ≥ 0.7: TLS
costs CPU on the cores the broker and the producer share). Writes target/bench/security.md
and the "security" section of docs/BENCHMARKS.md.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite import OUT, RETENTION, ROOT, SLUICE, BrokerProcess, free_port, machine, update_docs
from transactions import PARTITIONS, VALUE_BYTES, run_side, take_turns

sys.path.insert(0, str(ROOT / "tools" / "tests" / "clients"))
from certificates import make_all  # noqa: E402

BEGIN, END = "<!-- security:begin -->", "<!-- security:end -->"
PASSWORD = "bench-secret"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="per side and round")
    parser.add_argument("--rounds", type=int, default=3)
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
    finally:
        broker.stop()
        subprocess.run(["rm", "-rf", str(base)])
    plaintext, secured = (statistics.median(results[s]) for s in ("PLAINTEXT", "SASL_SSL"))
    ratio = secured / plaintext
    verdict = "meets" if ratio >= 0.7 else "misses"
    rounds = lambda side: ", ".join(f"{r:.1f}" for r in results[side])  # noqa: E731
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
    ])
    (OUT / "security.md").write_text(markdown)
    print(markdown)
    update_docs(markdown, BEGIN, END, "Security: SASL_SSL against PLAINTEXT (`make bench`)")


if __name__ == "__main__":
    main()
