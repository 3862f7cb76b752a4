"""Profiles the three brokers of bench/cluster.py under its ingest load with perf (call
graphs from DWARF), then prints where their CPU time goes by function and caller.

    .venv/bin/python bench/profile_cluster.py [--seconds 5] [--out target/bench/cluster.perf]

Needs `perf` (Debian's linux-perf) and permission to profile other processes (root, or
kernel.perf_event_paranoid <= 1). Not part of `make bench`: it is for finding what to make
cheaper, its figures are not comparable between runs."""
import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from cluster import BOUNDED, FAST_FAILURE_DETECTION, Cluster
from suite import LOAD, OUT, SLUICE

# The functions worth a caller breakdown (libc's copies and zeroing carry no frame
# pointers, so only DWARF unwinding names who called them).
HOT = ["__memmove_avx512_unaligned_erms", "__memset_avx512_unaligned_erms", "crc32c::hw_x86_64::crc_u64_parallel3"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--out", default=str(OUT / "cluster.perf"))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sluice-cluster-profile-"))
    cluster = Cluster(base, [*BOUNDED, *FAST_FAILURE_DETECTION, "--default-replication-factor", "3",
                             "--topic-default", "min.insync.replicas=2"])
    try:
        time.sleep(3)  # registration and the first metadata on every broker
        pids = ",".join(str(b.process.pid) for b in cluster.brokers.values())
        load = subprocess.Popen([str(SLUICE), "bench", "produce", "-b", cluster.bootstrap, "-t", "profiled", *LOAD,
                                 "-d", str(args.seconds + 12), "--warmup", "3"], stdout=subprocess.DEVNULL)
        time.sleep(6)  # past the warm-up, at full speed
        subprocess.run(["perf", "record", "-F", "299", "--call-graph", "dwarf,16384", "-p", pids, "-o", args.out,
                        "--", "sleep", str(args.seconds)], check=True, capture_output=True)
        load.wait(120)
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(base)])
    report = ["perf", "report", "-i", args.out, "--no-children", "--stdio"]
    top = subprocess.run([*report, "--sort", "symbol", "-g", "none"], capture_output=True, text=True).stdout
    print("\n".join([line for line in top.splitlines() if "%" in line and not line.startswith("#")][:30]))
    for symbol in HOT:
        callers = subprocess.run([*report, f"--symbol-filter={symbol}", "-g", "caller,0.5,callee,function,percent"],
                                 capture_output=True, text=True).stdout
        print(f"\n{symbol}, by caller:")
        print("\n".join(line for line in callers.splitlines() if "%" in line and not line.startswith("#")))


if __name__ == "__main__":
    main()
