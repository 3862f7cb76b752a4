#!/usr/bin/env python3
"""`make bench`: the fixed Kafka benchmark suite, with `sluice bench` as the load generator.

For sluice (a fresh `sluice serve`) and, when TANSU_BIN names a tansu binary, for tansu in
the same run:
  1. max ingest: 1 KiB values, 6 partitions, acks=all, as fast as the broker takes them;
  2. end-to-end latency, open loop at 50% of sluice's max ingest (the same rate for every
     broker), consumers following the producers;
  3. consume MB/s: a topic filled with FILL messages, read from start to end.
Then, for sluice only:
  4. agreement with librdkafka's own producer (bench/librdkafka, when built) on the same
     load, alternating runs;
  5. the broker's RSS sampled every second while the load generator drives it at its max
     for RSS_SECONDS (retention keeps the disk bounded).
Writes target/bench/suite.md, the JSON of every run and a latency chart under
target/bench/, and replaces the section between the suite markers in docs/BENCHMARKS.md.
Python standard library only. Every load is bounded in time.

  bench/suite.py [--seconds 20] [--rss-seconds 60] [--fill 1000000] [--no-docs]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLUICE = Path(os.environ.get("SLUICE_BIN", ROOT / "target" / "release" / "sluice"))
OUT = ROOT / "target" / "bench"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"
RDKAFKA = OUT / "rdkafka_performance"
# The load every broker gets; the librdkafka comparison mirrors it (bench/librdkafka/produce.sh).
LOAD = ["--partitions", "6", "--message-size", "1024", "--acks", "all", "--batch-bytes", "1048576",
        "--linger-ms", "5", "--max-in-flight", "5", "--compression", "none"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """A broker on a free loopback port, its output in OUT/<name>.log."""

    def __init__(self, name, command_for_port, port=None):
        self.name = name
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = open(OUT / f"{name}.log", "wb")
        self.process = subprocess.Popen(command_for_port(self.port), stdout=self.log, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{name} exited at start; see {OUT / (name + '.log')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{name} did not start within 30 s")

    def rss_kib(self):
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# Bounds the disk a run uses (about 3.8 GB a 6-partition topic: 512 MiB kept plus the
# 128 MiB active segment per partition); the suite's seven topics stay under 30 GB. A
# consume run's fill (1 GB) stays far below it.
RETENTION = ["--topic-default", "retention.bytes=536870912", "--topic-default", "segment.bytes=134217728"]


def start_sluice(data_dir, *flags):
    return BrokerProcess("sluice", lambda port: [str(SLUICE), "serve", "--listen", f"127.0.0.1:{port}",
                                                 "--data-dir", str(data_dir), *flags])


def start_tansu(binary):
    return BrokerProcess("tansu", lambda port: [
        binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"])


def bench(broker, mode, name, topic, *flags, timeout, watch=None):
    """Runs `sluice bench MODE` on a fresh `topic`, echoing its progress; returns the saved
    report. tansu's topics are deleted afterwards (they live in its memory). sluice's stay:
    retention bounds them, and deleting gigabytes on a disk mounted with `discard` slows
    the device for a while, which would disturb the next run. `watch(process)`, if given,
    is called once the bench process has started (to sample its CPU, say)."""
    json_path = OUT / f"{name}.json"
    command = [str(SLUICE), "bench", mode, "-b", broker.address, "-t", topic, "--label", name,
               "--json", str(json_path), *flags]
    print("$", " ".join(command), flush=True)
    try:
        process = subprocess.Popen(command, stdout=sys.stdout, stderr=sys.stderr)
        if watch:
            watch(process)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    finally:
        if broker.name == "tansu":
            subprocess.run([str(SLUICE), "topic", "-b", broker.address, "delete", topic], capture_output=True,
                           timeout=60)
    if process.returncode != 0 and not json_path.exists():
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode})")
    return json.loads(json_path.read_text())["report"]


class RssSampler(threading.Thread):
    """Samples a broker's RSS once a second until stopped."""

    def __init__(self, broker):
        super().__init__(daemon=True)
        self.broker, self.samples, self.done = broker, [], threading.Event()

    def run(self):
        start = time.monotonic()
        while not self.done.wait(1.0):
            rss = self.broker.rss_kib()
            if rss is not None:
                self.samples.append((time.monotonic() - start, rss))

    def stop(self):
        self.done.set()
        self.join()
        return self.samples


def run_broker_suite(broker, seconds, fill, e2e_rate):
    """Max ingest, e2e at `e2e_rate` (None: half of this broker's max) and consume."""
    sampler = RssSampler(broker)
    sampler.start()
    ingest = bench(broker, "produce", f"{broker.name}-ingest", "ingest", *LOAD, "-d", str(seconds),
                   "--warmup", "3", timeout=seconds + 200)
    rss = sampler.stop()
    rate = e2e_rate or round(ingest["produce"]["msgs_per_s"] / 2)
    e2e = bench(broker, "e2e", f"{broker.name}-e2e", "e2e", *LOAD, "-r", str(rate), "-d", str(seconds),
                "--warmup", "3", "-p", "1", "-c", "1", timeout=seconds + 200)
    consume = bench(broker, "consume", f"{broker.name}-consume", "consume", *LOAD,
                    "--fill-messages", str(fill), "-c", "1", "-d", str(max(seconds, 60)), timeout=600)
    return {"ingest": ingest, "e2e": e2e, "e2e_rate": rate, "consume": consume,
            "ingest_rss_max_kib": max((kib for _, kib in rss), default=None)}


def librdkafka_produce(broker, topic, seconds):
    """librdkafka's producer (bench/librdkafka/produce.sh) on a fresh 6-partition `topic`
    with the suite's load; its summary line as a dict of strings ({} if it printed none)."""
    subprocess.run([str(SLUICE), "topic", "-b", broker.address, "create", topic, "--partitions", "6"],
                   check=True, capture_output=True, timeout=60)
    lines = subprocess.run([str(ROOT / "bench" / "librdkafka" / "produce.sh"), broker.address, topic,
                            str(seconds), "1024"], capture_output=True, text=True,
                           timeout=seconds + 120).stdout.strip().splitlines()
    return dict(item.split("=") for item in lines[-1].split()[1:]) if lines else {}


def librdkafka_agreement(broker, seconds, rounds):
    """Alternating runs of our producer and librdkafka's on fresh topics with the same load."""
    pairs = []
    for round_ in range(rounds):
        ours = bench(broker, "produce", f"agreement-sluice-bench-{round_}", f"agree-ours-{round_}", *LOAD,
                     "-d", str(seconds), "--warmup", "0", timeout=seconds + 200)["produce"]
        theirs = librdkafka_produce(broker, f"agree-librdkafka-{round_}", seconds)
        if not theirs:
            print("librdkafka run printed no summary; skipping the comparison")
            return pairs
        print(f"round {round_}: sluice bench {ours['mb_per_s']:.1f} MB/s, librdkafka {theirs['mb_per_s']} MB/s")
        pairs.append((ours, {k: float(v) for k, v in theirs.items()}))
    return pairs


def rss_run(seconds):
    """sluice at its max for `seconds` with retention on; the broker's RSS every second."""
    data = Path(tempfile.mkdtemp(prefix="sluice-rss-"))
    broker = start_sluice(data, *RETENTION)
    try:
        sampler = RssSampler(broker)
        sampler.start()
        report = bench(broker, "produce", "sluice-rss", "rss", *LOAD, "-d", str(seconds), "--warmup", "0",
                       timeout=seconds + 200)
        samples = sampler.stop()
        (OUT / "sluice-rss-samples.json").write_text(json.dumps([{"second": round(t, 1), "rss_kib": kib}
                                                                 for t, kib in samples]))
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
    return report, samples


def ms(us):
    return f"{us / 1000:.2f}"


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return f"{os.cpu_count()} × {cpu}, {memory_gib} GiB, Linux {platform.release()}"


def render(results, seconds, fill, agreement, rss, rss_seconds, tansu_bin):
    lines = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; "
        "broker and load generator share the machine's cores, so every figure is a lower bound.",
        "",
        f"Command: `{'TANSU_BIN=' + tansu_bin + ' ' if tansu_bin else ''}make bench` "
        f"(= `bench/suite.py --seconds {seconds} --fill {fill} --rss-seconds {rss_seconds}`). Load generator: "
        "`sluice bench` (its own Kafka client); flags of every run: `" + " ".join(LOAD) + "`; "
        f"{seconds} s measured after 3 s of warm-up; each run on a fresh topic. sluice runs "
        "with its defaults (all cores, `--flush every-append`: every acks=all answer waits for its fsync) and "
        "retention.bytes 512 MiB, segment.bytes 128 MiB per partition (so the disk stays bounded); tansu 0.6.0 with "
        "`--storage-engine memory://tansu/` (no disk). MB = 10^6 bytes of key + value.",
        "",
        "| broker | max ingest MB/s | msgs/s | ack p50 ms | ack p99 ms | e2e rate msgs/s | e2e p50 ms | "
        "e2e p99 ms | e2e p99.9 ms | e2e max ms | consume MB/s | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        ingest, e2e = r["ingest"]["produce"], r["e2e"]
        latency = e2e["e2e_latency"]
        failed = sum(f["failed"] for f in (ingest, e2e["produce"], r["consume"]["consume"]))
        lines.append(
            f"| {name} | {ingest['mb_per_s']:.1f} | {ingest['msgs_per_s']:.0f} | {ms(ingest['latency']['p50_us'])} | "
            f"{ms(ingest['latency']['p99_us'])} | {r['e2e_rate']} | {ms(latency['p50_us'])} | {ms(latency['p99_us'])} | "
            f"{ms(latency['p999_us'])} | {ms(latency['max_us'])} | {r['consume']['consume']['mb_per_s']:.1f} | {failed} |")
    if "sluice" in results and "tansu" in results:
        s, t = results["sluice"], results["tansu"]
        lines += ["", "tansu / sluice: max ingest "
                  f"{t['ingest']['produce']['mb_per_s'] / s['ingest']['produce']['mb_per_s']:.2f}, consume "
                  f"{t['consume']['consume']['mb_per_s'] / s['consume']['consume']['mb_per_s']:.2f}, e2e p99 "
                  f"{t['e2e']['e2e_latency']['p99_us'] / max(1, s['e2e']['e2e_latency']['p99_us']):.1f}× sluice's."]
        if t["e2e"]["consume"]["messages"] < t["e2e"]["produce"]["messages"]:
            lines.append(f"tansu's e2e consumers got {t['e2e']['consume']['messages']} of "
                         f"{t['e2e']['produce']['messages']} messages before the run's time limit.")
    lines += ["", f"Consume: {fill} messages filled first, then one consumer reads the topic from start to end "
              "(fetch max 1 MiB a partition, CRC checked). Latency chart: target/bench/e2e.html "
              "(`sluice bench plot`)."]
    if agreement:
        lines += ["", "**Agreement with librdkafka's own producer** (`rdkafka_performance` 2.0.2 from "
                  "bench/librdkafka, same load against the same sluice, alternating, 10^6-byte MB of value bytes):",
                  "", "| round | sluice bench MB/s | librdkafka MB/s | ratio |", "|---:|---:|---:|---:|"]
        for i, (ours, theirs) in enumerate(agreement):
            lines.append(f"| {i} | {ours['mb_per_s']:.1f} | {theirs['mb_per_s']:.1f} | "
                         f"{ours['mb_per_s'] / theirs['mb_per_s']:.3f} |")
        mean_ours = statistics.mean(o["mb_per_s"] for o, _ in agreement)
        mean_theirs = statistics.mean(t["mb_per_s"] for _, t in agreement)
        lines += ["", f"Means: {mean_ours:.1f} vs {mean_theirs:.1f} MB/s, ratio {mean_ours / mean_theirs:.3f}."]
    if rss:
        report, samples = rss
        kib = [k for _, k in samples]
        settled = [k for t, k in samples if t >= 10] or kib
        produce = report["produce"]
        lines += ["", f"**Broker RSS at max ingest for {rss_seconds} s** (retention.bytes 512 MiB and segment.bytes "
                  f"128 MiB per partition, so retention deletes segments throughout): {produce['mb_per_s']:.1f} MB/s, "
                  f"{len(kib)} samples; RSS first {kib[0] // 1024} MiB, from 10 s on min {min(settled) // 1024} / "
                  f"max {max(settled) // 1024} MiB, last {kib[-1] // 1024} MiB. Every 10 s: "
                  + ", ".join(f"{t:.0f} s {k // 1024} MiB" for t, k in samples[9::10])
                  + " (all samples: target/bench/sluice-rss-samples.json)."]
    return "\n".join(lines) + "\n"


def update_docs(markdown, begin=BEGIN, end=END, heading="Kafka load generator suite (`make bench`)"):
    """Replaces the section between `begin` and `end` in docs/BENCHMARKS.md (appended under
    `heading` the first time)."""
    text = DOCS.read_text()
    section = f"{begin}\n{markdown}{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text += f"\n## {heading}\n\n{section}\n"
    DOCS.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--fill", type=int, default=1_000_000)
    parser.add_argument("--rss-seconds", type=int, default=60)
    parser.add_argument("--agreement-rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    tansu_bin = os.environ.get("TANSU_BIN")
    results = {}
    data = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    broker = start_sluice(data, *RETENTION)
    agreement = []
    try:
        results["sluice"] = run_broker_suite(broker, args.seconds, args.fill, None)
        if RDKAFKA.exists() and args.agreement_rounds > 0:
            agreement = librdkafka_agreement(broker, 10, args.agreement_rounds)
        else:
            print(f"{RDKAFKA} not built (bench/librdkafka/build.sh); skipping the librdkafka comparison")
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
    if tansu_bin:
        broker = start_tansu(tansu_bin)
        try:
            results["tansu"] = run_broker_suite(broker, args.seconds, args.fill, results["sluice"]["e2e_rate"])
        finally:
            broker.stop()
    rss = rss_run(args.rss_seconds) if args.rss_seconds > 0 else None
    subprocess.run([str(SLUICE), "bench", "plot", "-o", str(OUT / "e2e.html"), "--title",
                    "end-to-end latency at 50% of sluice's max ingest",
                    *[str(OUT / f"{name}-e2e.json") for name in results]], check=True, timeout=60)
    markdown = render(results, args.seconds, args.fill, agreement, rss, args.rss_seconds, tansu_bin)
    (OUT / "suite.md").write_text(markdown)
    print("\n" + markdown)
    if not args.no_docs:
        update_docs(markdown)
        print(f"updated {DOCS}")


if __name__ == "__main__":
    main()
