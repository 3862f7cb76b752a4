#!/usr/bin/env python3
"""Broker CPU at idle: a fresh `sluice serve` (2 shards) with PARTITIONS empty partitions
(one topic), no clients; the broker's user+system CPU over SECONDS, as % of one core.
The same with no partitions is the floor. Python standard library only.

  bench/idle_cpu.py [--partitions 10000] [--seconds 20] [--json FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from suite import OUT, SLUICE, start_sluice

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def idle_percent(partitions, seconds):
    data = Path(tempfile.mkdtemp(prefix="sluice-idle-"))
    broker = start_sluice(data, "--cores", "2")
    try:
        if partitions:
            subprocess.run([str(SLUICE), "topic", "create", "-b", broker.address, "-p", str(partitions), "idle"],
                           check=True, capture_output=True, timeout=600)
        time.sleep(3)  # creation settles (files, metadata pushes)
        before, started = cpu_seconds(broker.process.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = cpu_seconds(broker.process.pid) - before, time.monotonic() - started
        return 100 * used / elapsed
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"partitions": args.partitions, "seconds": args.seconds,
              "idle_cpu_percent": round(idle_percent(args.partitions, args.seconds), 2),
              "idle_cpu_percent_no_partitions": round(idle_percent(0, args.seconds), 2)}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
