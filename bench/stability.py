#!/usr/bin/env python3
"""`make bench`, second part: the stability and latency-tail figures, in one run.

On a fresh `sluice serve` (defaults: all cores, `--flush every-append`) with the suite's
load (bench/suite.py LOAD):
  1. max ingest for SECONDS, and the broker's CPU-seconds per GB ingested over that run
     (also under librdkafka's `rdkafka_performance` when bench/librdkafka built it);
  2. end-to-end latency, open loop, linger 1 ms, at 10% and 50% of that max, each on a
     topic with default segments (no roll in the run), one with 32 MiB segments (rolls)
     and one whose retention also deletes segments throughout the run (retention.bytes
     64 MiB per partition), the deletes counted from the broker's log; the broker restarts
     (same data) before each, so its fsync latency record (`sluice admin metrics`) is the
     run's own and is reported beside the end-to-end figures; and the same load with
     default segments on a broker started with `--flush never` (the tail without fsync);
  3. catch-up consume: FILL messages, then one consumer from start to end, against a raw
     O_DIRECT sequential read (1 MiB blocks, 1 and 4 in flight) of a file written with
     O_DIRECT on the same disk, measured right after; the broker's and the consumer's CPU
     (cores used) over the consume, sampled from /proc; then the disk's own fdatasync
     latency (4 KiB O_DIRECT write + fdatasync), the floor under an acks=all append;
  4. idle CPU with 10 000 empty partitions on 2 shards, and with none (bench/idle_cpu.py).
Writes target/bench/stability.md and replaces the section between the stability markers
in docs/BENCHMARKS.md. Python standard library only; every load is bounded in time.

  bench/stability.py [--seconds 20] [--fill 3000000] [--idle-seconds 20] [--no-docs]
"""
import argparse
import datetime
import json
import mmap
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from idle_cpu import cpu_seconds, idle_percent
from suite import LOAD, OUT, RDKAFKA, SLUICE, bench, librdkafka_produce, machine, ms, start_sluice, update_docs

BEGIN, END = "<!-- stability:begin -->", "<!-- stability:end -->"
ROLLING = ["--topic-config", "segment.bytes=33554432"]
# file.delete.delay.ms=0: the removed segments' blocks are freed during the run (with the
# default 60 s they would be freed after it).
DELETING = [*ROLLING, "--topic-config", "retention.bytes=67108864", "--topic-config", "file.delete.delay.ms=0"]
# The e2e runs as the latency goals state them: linger 1 ms instead of the suite's 5.
E2E_LOAD = [value if flag != "--linger-ms" else "1" for flag, value in zip(["", *LOAD], LOAD)]
SEGMENTS = {"none": [], "rolling": ROLLING, "deleting": DELETING}
# The same load on a broker that never fsyncs before it answers: what is left of the
# end-to-end tail without the disk (client, network, shards), beside the runs above.
# (Every run's topic stays, as in suite.py: about 45 GB in all with --seconds 20.)
NO_FSYNC = "none, --flush never"
BROKER_FLAGS = {NO_FSYNC: ["--flush", "never"]}
RAW_BLOCK = 1 << 20
RAW_FILE_BYTES = 2 << 30


def retention_deletes(log_path, topic):
    """Segments the broker's log says retention deleted from `topic`'s partitions."""
    pattern = re.compile(rf"retention deleted segments.*partition=\"?{re.escape(topic)}-\d+\"? segments=(\d+)")
    return sum(int(m.group(1)) for m in pattern.finditer(log_path.read_text(errors="replace")))


def cpu_per_gb(broker, run):
    """Runs `run()` (returning bytes produced) and divides the broker's CPU time by them."""
    before = cpu_seconds(broker.process.pid)
    produced = run()
    used = cpu_seconds(broker.process.pid) - before
    return used / (produced / 1e9), used, produced


def librdkafka_bytes(broker, seconds):
    summary = librdkafka_produce(broker, "stability-librdkafka", seconds)
    if "mb_per_s" not in summary:
        raise RuntimeError("rdkafka_performance printed no summary")
    return float(summary["mb_per_s"]) * 1e6 * seconds


def raw_read_mb_per_s(directory, in_flight):
    """Sequential O_DIRECT read of a freshly written file, `in_flight` blocks at a time
    (threads each reading every `in_flight`-th block: os.preadv releases the GIL)."""
    path = directory / "raw-read"
    block = mmap.mmap(-1, RAW_BLOCK)  # page-aligned, as O_DIRECT needs
    block.write(os.urandom(RAW_BLOCK))
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
        try:
            for offset in range(0, RAW_FILE_BYTES, RAW_BLOCK):
                assert os.pwritev(fd, [block], offset) == RAW_BLOCK
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    totals = [0] * in_flight

    def reader(index):
        buffer = mmap.mmap(-1, RAW_BLOCK)
        for offset in range(index * RAW_BLOCK, RAW_FILE_BYTES, in_flight * RAW_BLOCK):
            totals[index] += os.preadv(fd, [buffer], offset)

    try:
        started = time.monotonic()
        threads = [threading.Thread(target=reader, args=(i,)) for i in range(in_flight)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        os.close(fd)
    assert sum(totals) == RAW_FILE_BYTES, "short O_DIRECT read"
    return RAW_FILE_BYTES / 1e6 / elapsed


RAW_SYNC_WRITES = 3000
RAW_SYNC_PER_S = 500


def raw_fsync_latencies(directory, overwrite):
    """The disk's own floor under an acks=all append: 4 KiB O_DIRECT writes, each followed
    by fdatasync, RAW_SYNC_PER_S a second, into a file fallocated ahead (unwritten extents,
    as the broker's segments are: each fdatasync also persists the extent conversion) or,
    with `overwrite`, into blocks written before (only the device cache flush is left).
    Returns latency percentiles in µs of write + fdatasync, like `sluice admin metrics`."""
    path = directory / ("raw-sync-overwrite" if overwrite else "raw-sync-fresh")
    block = mmap.mmap(-1, 4096)
    block.write(os.urandom(4096))
    size = RAW_SYNC_WRITES * 4096
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
    latencies = []
    try:
        os.posix_fallocate(fd, 0, size)
        if overwrite:
            for offset in range(0, size, 4096):
                os.pwritev(fd, [block], offset)
        os.fsync(fd)
        next_at = time.monotonic()
        for offset in range(0, size, 4096):
            next_at += 1 / RAW_SYNC_PER_S
            time.sleep(max(0.0, next_at - time.monotonic()))
            started = time.monotonic()
            assert os.pwritev(fd, [block], offset) == 4096
            os.fdatasync(fd)
            latencies.append((time.monotonic() - started) * 1e6)
    finally:
        os.close(fd)
        path.unlink()
    latencies.sort()

    def at(quantile):
        return latencies[min(len(latencies) - 1, int(quantile * len(latencies)))]
    return {"p50_us": at(0.5), "p99_us": at(0.99), "p999_us": at(0.999), "max_us": latencies[-1]}


class CpuSampler(threading.Thread):
    """Samples the CPU time of a set of processes every 0.1 s until stopped."""

    def __init__(self, **pids):
        super().__init__(daemon=True)
        self.pids, self.samples, self.done = pids, [], threading.Event()

    def run(self):
        while True:
            sample = {"t": time.monotonic()}
            for name, pid in self.pids.items():
                try:
                    sample[name] = cpu_seconds(pid)
                except (OSError, IndexError):
                    return  # a process ended: the samples so far are the run
            self.samples.append(sample)
            if self.done.wait(0.1):
                return

    def cores_over_last(self, seconds):
        """Cores each process used over the last `seconds` of the samples."""
        end = self.samples[-1]
        start = min(self.samples, key=lambda sample: abs(sample["t"] - (end["t"] - seconds)))
        elapsed = max(end["t"] - start["t"], 1e-9)
        return {name: (end[name] - start[name]) / elapsed for name in self.pids}, elapsed


def fsync_latencies(data):
    """The broker's fsync latency record since it started (`sluice admin metrics`)."""
    reply = subprocess.run([str(SLUICE), "admin", "--data-dir", str(data), "--json", "metrics"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(reply)["fsync"]


def broker_runs(seconds, fill, data):
    broker = start_sluice(data)
    log_path = OUT / "sluice.log"
    try:
        ingest = {}
        per_gb, used, produced = cpu_per_gb(broker, lambda: ingest.setdefault("r", bench(
            broker, "produce", "stability-ingest", "stability-ingest", *LOAD, "-d", str(seconds),
            "--warmup", "0", timeout=seconds + 200))["produce"]["bytes"])
        cpu = [("sluice bench", per_gb, used, produced)]
        if RDKAFKA.exists():
            try:
                cpu.append(("rdkafka_performance", *cpu_per_gb(broker, lambda: librdkafka_bytes(broker, seconds))))
            except (RuntimeError, subprocess.SubprocessError) as error:
                print(f"librdkafka CPU run skipped: {error}")
        max_rate = ingest["r"]["produce"]["msgs_per_s"]
        e2e = []
        # Runs without deletes first: the deleting runs' discards must not slow the others.
        for segments in [*SEGMENTS, NO_FSYNC]:
            for share in (0.1, 0.5):
                # A restart (same data) per run, so the broker's fsync record is this run's.
                broker.stop()
                broker = start_sluice(data, *BROKER_FLAGS.get(segments, []))
                rate = round(max_rate * share)
                name = f"stability-e2e-{round(share * 100)}-{segments.split(',')[0]}" + (
                    "-nofsync" if segments == NO_FSYNC else "")
                report = bench(broker, "e2e", name, name, *E2E_LOAD, *SEGMENTS.get(segments, []), "-r", str(rate),
                               "-d", str(seconds), "--warmup", "3", "-p", "1", "-c", "1", timeout=seconds + 200)
                e2e.append({"share": share, "rate": rate, "segments": segments, "report": report,
                            "deletes": retention_deletes(log_path, name), "fsync": fsync_latencies(data)})
        samplers = []

        def watch(process):
            samplers.append(CpuSampler(broker=broker.process.pid, consumer=process.pid))
            samplers[0].start()

        consume = bench(broker, "consume", "stability-consume", "stability-consume", *LOAD,
                        "--fill-messages", str(fill), "-c", "1", "-d", str(max(seconds, 60)), timeout=600,
                        watch=watch)
        samplers[0].done.set()
        samplers[0].join()
        consume["cores"], _ = samplers[0].cores_over_last(consume["consume"]["seconds"])
        raw = {depth: raw_read_mb_per_s(data, depth) for depth in (1, 4)}
        raw_sync = {kind: raw_fsync_latencies(data, kind == "overwrite") for kind in ("fresh", "overwrite")}
        return {"ingest": ingest["r"], "cpu": cpu, "e2e": e2e, "consume": consume, "raw": raw, "raw_sync": raw_sync}
    finally:
        broker.stop()


def render(results, args):
    ingest = results["ingest"]["produce"]
    lines = [
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; broker and "
        "load generator share the cores.", "",
        f"Command: `make bench` (= `bench/stability.py --seconds {args.seconds} --fill {args.fill} "
        f"--idle-seconds {args.idle_seconds}`), after the suite above. sluice with its defaults (all cores, "
        "`--flush every-append`); load flags `" + " ".join(LOAD) + "`; each run on a fresh topic.", "",
        f"**Max ingest** {ingest['mb_per_s']:.1f} MB/s ({ingest['msgs_per_s']:.0f} msg/s). **Broker CPU per GB "
        "ingested** at max: " + "; ".join(f"{name} {per_gb:.2f} s/GB ({used:.1f} CPU-s for {produced / 1e9:.2f} GB)"
                                       for name, per_gb, used, produced in results["cpu"]) + ".", "",
        "**End-to-end latency**, open loop, 1 producer and 1 consumer connection, acks=all, linger 1 ms; "
        "segments \"none\": the defaults (1 GiB segments, no roll in the run); \"rolling\": segment.bytes 32 MiB "
        "per partition; \"deleting\": that and retention.bytes 64 MiB, so retention deletes segments "
        "throughout the run (file.delete.delay.ms 0: their blocks are freed during the run); \"--flush never\": default segments on a broker that answers acks=all without "
        "waiting for an fsync (what the tail is without the disk):", "",
        "| load | rate msg/s | segments | segments deleted | p50 ms | p99 ms | p99.9 ms | max ms | failed "
        "| fsync p50 / p99 / p99.9 / max ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in results["e2e"]:
        latency, report = run["report"]["e2e_latency"], run["report"]
        failed = report["produce"]["failed"] + report["consume"]["failed"]
        lines.append(f"| {round(run['share'] * 100)}% of max | {run['rate']} | "
                     f"{run['segments']} | {run['deletes']} | {ms(latency['p50_us'])} | "
                     f"{ms(latency['p99_us'])} | {ms(latency['p999_us'])} | {ms(latency['max_us'])} | {failed} | "
                     + " / ".join(ms(run["fsync"][field]) for field in ("p50_us", "p99_us", "p999_us", "max_us"))
                     + " |")
    by_key = {(r["share"], r["segments"]): r["report"]["e2e_latency"]["p99_us"] for r in results["e2e"]}
    lines += ["", "p99 relative to \"none\": " + "; ".join(
        f"{round(share * 100)}% rolling {by_key[(share, 'rolling')] / max(1, by_key[(share, 'none')]):.2f}, "
        f"deleting {by_key[(share, 'deleting')] / max(1, by_key[(share, 'none')]):.2f}, "
        f"without fsync {by_key[(share, NO_FSYNC)] / max(1, by_key[(share, 'none')]):.2f}" for share in (0.1, 0.5)) + "."]
    lines += ["", f"**The disk's fdatasync floor**, measured after the runs (no broker load): a 4 KiB O_DIRECT write "
              f"and fdatasync, {RAW_SYNC_PER_S} a second, {RAW_SYNC_WRITES} times, p50 / p99 / p99.9 / max ms: "
              + "; ".join(f"{kind} {' / '.join(ms(sync[field]) for field in ('p50_us', 'p99_us', 'p999_us', 'max_us'))}"
                          for kind, sync in results["raw_sync"].items())
              + " (fresh: into fallocated blocks, as segments are written; overwrite: into written blocks)."]
    consume, raw = results["consume"]["consume"]["mb_per_s"], results["raw"]
    cores = results["consume"]["cores"]
    lines += ["", f"**Catch-up consume** ({args.fill} messages, one consumer, start to end): {consume:.1f} MB/s. "
              f"Raw O_DIRECT sequential read of a {RAW_FILE_BYTES >> 30} GiB file on the same disk, 1 MiB blocks, "
              f"right after: {raw[1]:.0f} MB/s with 1 in flight, {raw[4]:.0f} MB/s with 4. Consume / raw: "
              f"{consume / raw[1]:.2f} (QD1), {consume / raw[4]:.2f} (QD4). CPU during the consume: broker "
              f"{cores['broker']:.2f} cores, consumer {cores['consumer']:.2f} cores, of the machine's "
              f"{os.cpu_count()}."]
    lines += ["", f"**Idle CPU** (2 shards, no clients, {args.idle_seconds} s): {results['idle']:.2f}% of one core "
              f"with 10 000 empty partitions, {results['idle_floor']:.2f}% with none."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--fill", type=int, default=3_000_000)
    parser.add_argument("--idle-seconds", type=float, default=20)
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="sluice-stability-"))
    try:
        results = broker_runs(args.seconds, args.fill, data)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    results["idle"] = idle_percent(10_000, args.idle_seconds)
    results["idle_floor"] = idle_percent(0, args.idle_seconds)
    markdown = render(results, args)
    (OUT / "stability.md").write_text(markdown)
    print("\n" + markdown)
    if not args.no_docs:
        update_docs(markdown, BEGIN, END, "Stability and the latency tail (`make bench`)")


if __name__ == "__main__":
    main()
