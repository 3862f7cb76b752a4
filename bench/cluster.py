#!/usr/bin/env python3
"""`make bench`, the cluster part (issue 12): three brokers with replication factor 3 and
acks=all against one broker on the same machine, as ratios measured in one run:

- max ingest (MB/s) with the load generator's suite load, and broker CPU-seconds per GB
  (all brokers' utime + stime over the run, per GB produced);
- e2e p99 at half of each one's own max;
- failover: the leader of a partition SIGKILLed under a steady acks=all producer, time to
  its first acknowledgement after the kill (from the new leader: the old one is dead),
  median and worst of 10.

The three brokers share this machine's cores (each runs one shard), so the cluster does
three times the disk writes and fsyncs and more than twice the network copies on the same
hardware. Writes target/bench/cluster.md and the "cluster" section of docs/BENCHMARKS.md.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from idle_cpu import cpu_seconds
from suite import LOAD, OUT, RETENTION, SLUICE, BrokerProcess, bench, free_port, machine, ms, update_docs

BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"
# Retention's deletes free their blocks at once (file.delete.delay.ms=0): three brokers
# writing at full speed would otherwise fill the disk before the default 60 s delay ends.
BOUNDED = [*RETENTION, "--topic-default", "file.delete.delay.ms=0"]
CALLBACK_SLACK_S = 0.05
MESSAGE_BYTES = int(LOAD[LOAD.index("--message-size") + 1])
FAST_FAILURE_DETECTION = ["--broker-heartbeat-interval-ms", "500", "--broker-session-timeout-ms", "1500"]


class Cluster:
    """Three combined-mode nodes on loopback, one shard each."""

    def __init__(self, base, flags):
        self.controller_ports = {node: free_port() for node in (1, 2, 3)}
        voters = ",".join(f"{n}@127.0.0.1:{p}" for n, p in self.controller_ports.items())
        self.base, self.flags, self.voters = base, flags, voters
        self.brokers = {node: self.start(node) for node in (1, 2, 3)}

    def start(self, node, port=None):
        def command(port_given):
            return [str(SLUICE), "serve", "--node-id", str(node), "--listen", f"127.0.0.1:{port_given}",
                    "--data-dir", str(self.base / f"node-{node}"), "--cores", "1",
                    "--controller-listen", f"127.0.0.1:{self.controller_ports[node]}",
                    "--controller-quorum-voters", self.voters, *self.flags]
        return BrokerProcess(f"cluster-node-{node}", command, port=port)

    @property
    def address(self):
        return ",".join(b.address for b in self.brokers.values())

    @property
    def bootstrap(self):
        """One broker: the load generator learns the others from Metadata."""
        return self.brokers[1].address

    def cpu_seconds(self):
        return sum(cpu_seconds(b.process.pid) for b in self.brokers.values())

    def stop(self):
        for broker in self.brokers.values():
            broker.stop()


class Single:
    def __init__(self, base, flags):
        self.broker = BrokerProcess("cluster-single", lambda port: [
            str(SLUICE), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(base / "single"), *flags])
        self.name = "sluice"

    @property
    def address(self):
        return self.broker.address

    bootstrap = address

    def cpu_seconds(self):
        return cpu_seconds(self.broker.process.pid)

    def stop(self):
        self.broker.stop()


class Target:
    """What `suite.bench` needs of a broker: a name and an address."""

    def __init__(self, name, address):
        self.name, self.address = name, address


def e2e_retention(rate, seconds, copies, data_dir):
    """The e2e topic's retention.bytes per partition: enough that the phase deletes nothing.
    With the suite's 512 MiB a partition, the phase began deleting its own segments in its
    last seconds (6 partitions filled at half the max rate), and those deletes on a disk
    mounted with `discard` stalled every broker's fsyncs: the p99 measured the disk's
    discards, not the replication. Both sides get the same rule; it is capped by the free
    disk (each byte is kept `copies` times), saying so when the cap means deletes."""
    partitions = int(LOAD[LOAD.index("--partitions") + 1])
    expected = rate * MESSAGE_BYTES * (seconds + 3) // partitions
    wanted = expected * 3 // 2
    room = shutil.disk_usage(data_dir).free * 6 // 10 // copies // partitions
    if room < wanted:
        print(f"e2e: only {room >> 20} MiB a partition of free disk for {expected >> 20} MiB expected: "
              "retention deletes will run during the phase", flush=True)
    return max(min(wanted, room), 512 << 20)


def wait_for_quiet_disk(data_dir, fast_s=0.02, in_a_row=3, cap_s=30):
    """Waits (at most `cap_s`) until a 4 KiB write + fsync next to the data takes under
    `fast_s`, `in_a_row` times: the max-ingest phase's retention deletes leave the disk
    discarding gigabytes for a while after it, which stalled the e2e phase that followed
    (a 207 ms single-node p99 once). Returns the seconds waited."""
    probe, start, fast = Path(data_dir) / "quiet-probe", time.monotonic(), 0
    try:
        while fast < in_a_row and time.monotonic() - start < cap_s:
            began = time.monotonic()
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
            fast = fast + 1 if time.monotonic() - began < fast_s else 0
            time.sleep(0.1)
    finally:
        probe.unlink(missing_ok=True)
    return time.monotonic() - start


def ingest_round(label, deployment, seconds, number):
    """One max-ingest round: MB/s and the brokers' CPU-seconds per GB produced."""
    target = Target("sluice", deployment.bootstrap)
    before = deployment.cpu_seconds()
    ingest = bench(target, "produce", f"cluster-{label}-ingest-{number}", "ingest", *LOAD, "-d", str(seconds),
                   "--warmup", "3", timeout=seconds + 200)["produce"]
    used = deployment.cpu_seconds() - before
    produced_gb = ingest["mb_per_s"] * (seconds + 3) / 1000  # the warm-up's bytes cost CPU too
    return {"mb_per_s": ingest["mb_per_s"], "cpu_s_per_gb": used / produced_gb, "msgs_per_s": ingest["msgs_per_s"],
            "failed": ingest["failed"]}


def median_of(rounds):
    """Each figure's median over the rounds (failures summed)."""
    figures = {key: statistics.median(r[key] for r in rounds) for key in ("mb_per_s", "cpu_s_per_gb", "msgs_per_s")}
    return {**figures, "failed": sum(r["failed"] for r in rounds), "rounds": rounds}


def e2e_phase(label, deployment, seconds, rate, copies, data_dir):
    retention = e2e_retention(rate, seconds, copies, data_dir)
    print(f"e2e: waited {wait_for_quiet_disk(data_dir):.1f} s for a quiet disk", flush=True)
    e2e = bench(Target("sluice", deployment.bootstrap), "e2e", f"cluster-{label}-e2e", "e2e", *LOAD, "-r",
                str(rate), "-d", str(seconds), "--warmup", "3", "-p", "1", "-c", "1", "--topic-config",
                f"retention.bytes={retention}", timeout=seconds + 200)
    return {"e2e_rate": rate, "e2e_p99_us": e2e["e2e_latency"]["p99_us"], "e2e_p50_us": e2e["e2e_latency"]["p50_us"],
            "e2e_retention": retention, "e2e_failed": e2e["produce"]["failed"]}


def measure(deployments, seconds, rounds, data_dir):
    """Max ingest in `rounds` rounds taking turns between the deployments (so that the
    shared machine's drift over minutes falls on both alike), each figure the median of
    its rounds; then e2e at half of each one's median max."""
    ingest = {label: [] for label in deployments}
    for number in range(1, rounds + 1):
        for label, (deployment, _) in deployments.items():
            ingest[label].append(ingest_round(label, deployment, seconds, number))
    results = {}
    for label, (deployment, copies) in deployments.items():
        result = median_of(ingest[label])
        result.update(e2e_phase(label, deployment, seconds, round(result["msgs_per_s"] / 2), copies, data_dir))
        result["failed"] += result.pop("e2e_failed")
        results[label] = result
    return results


def failover_times(cluster, rounds):
    """Leader SIGKILL → first acknowledged acks=all produce, `rounds` times."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": cluster.address, "log_level": 2})
    admin.create_topics([NewTopic("failover", 1, 3, config={"min.insync.replicas": "2"})])["failover"].result(30)
    producer = Producer({"bootstrap.servers": cluster.address, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 1, "topic.metadata.refresh.interval.ms": 250, "log_level": 2,
                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})
    acks, lock, stop = [], threading.Lock(), threading.Event()

    def on_delivery(error, _message):
        if error is None:
            with lock:
                acks.append(time.time())

    def produce():
        while not stop.is_set():
            producer.produce("failover", value=b"x" * 100, on_delivery=on_delivery)
            producer.poll(0.001)
        producer.flush(60)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    times = []
    for _ in range(rounds):
        time.sleep(1)
        metadata = admin.list_topics("failover", timeout=10)
        leader = metadata.topics["failover"].partitions[0].leader
        victim = cluster.brokers[leader]
        killed_at = time.time()
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        deadline = killed_at + 30
        first = None
        while first is None and time.time() < deadline:
            with lock:
                # Callbacks run in poll(): one just after the kill may report an answer
                # received before it. A failover takes at least the session timeout.
                first = next((t for t in acks if t > killed_at + CALLBACK_SLACK_S), None)
            time.sleep(0.01)
        times.append((first or deadline) - killed_at)
        victim.log.close()
        cluster.brokers[leader] = cluster.start(leader, port=victim.port)
        deadline = time.time() + 60
        while time.time() < deadline:
            isr = admin.list_topics("failover", timeout=10).topics["failover"].partitions[0].isrs
            if len(isr) == 3:
                break
            time.sleep(0.2)
    stop.set()
    thread.join(60)
    return times


def render(single, cluster, failovers, seconds, rounds):
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    rows = [
        "| | single node (2 shards) | 3 brokers, RF 3 (1 shard each) | ratio | target |",
        "|---|---|---|---|---|",
        f"| max ingest, MB/s (acks=all) | {single['mb_per_s']:.1f} | {cluster['mb_per_s']:.1f} | "
        f"{ratio(cluster['mb_per_s'], single['mb_per_s']):.2f} | ≥ 0.3 |",
        f"| broker CPU-s per GB produced | {single['cpu_s_per_gb']:.2f} | {cluster['cpu_s_per_gb']:.2f} | "
        f"{ratio(cluster['cpu_s_per_gb'], single['cpu_s_per_gb']):.2f} | ≤ 3.5 |",
        f"| e2e p99 at 50% of own max, ms | {ms(single['e2e_p99_us'])} (at {single['e2e_rate']} msg/s) | "
        f"{ms(cluster['e2e_p99_us'])} (at {cluster['e2e_rate']} msg/s) | "
        f"{ratio(cluster['e2e_p99_us'], single['e2e_p99_us']):.2f} | ≤ 2 |",
        f"| e2e p50, ms | {ms(single['e2e_p50_us'])} | {ms(cluster['e2e_p50_us'])} | | |",
    ]
    median = statistics.median(failovers)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {machine()}, `bench/cluster.py --seconds {seconds} "
        f"--rounds {rounds}`. "
        "The load generator's suite load (6 partitions, 1 KiB values, acks=all, 1 MiB batches, linger 5 ms); "
        "the cluster's topics have replication factor 3 and min.insync.replicas 2. The three brokers share the "
        "machine's two cores and one disk: every byte is written and fsynced three times, and crosses loopback "
        "twice more (two followers' fetches).",
        "",
        *rows,
        "",
        f"Max ingest and CPU per GB are the medians of {rounds} rounds of {seconds} s that take turns between "
        "the two (both stay up; the idle one costs next to nothing), against the shared machine's drift. "
        "Each round, single / cluster: "
        + "; ".join(f"{s['mb_per_s']:.0f} / {c['mb_per_s']:.0f} MB/s, {s['cpu_s_per_gb']:.2f} / "
                    f"{c['cpu_s_per_gb']:.2f} CPU-s per GB ({c['cpu_s_per_gb'] / s['cpu_s_per_gb']:.2f}x)"
                    for s, c in zip(single["rounds"], cluster["rounds"])) + ".",
        "",
        f"Failover (leader SIGKILL → first acknowledged acks=all produce, broker session timeout 1.5 s, "
        f"heartbeat 0.5 s): median {median:.2f} s, worst {max(failovers):.2f} s over {len(failovers)} kills "
        f"(targets ≤ 2 s, ≤ 5 s); all: {', '.join(f'{t:.2f}' for t in failovers)}.",
        "",
        f"The e2e phase writes to a topic of its own whose retention.bytes (single "
        f"{single['e2e_retention'] >> 20} MiB, cluster {cluster['e2e_retention'] >> 20} MiB a partition) holds "
        "everything it writes, so no retention delete runs during it, and it starts once a 4 KiB write + fsync "
        "next to the data takes under 20 ms three times in a row: the max phase's deletes leave the disk "
        "discarding for a while (see the disk note below).",
        "",
        f"Failed messages: single {single['failed']}, cluster {cluster['failed']}.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--failovers", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="max-ingest rounds per deployment")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="sluice-cluster-bench-"))
    try:
        single = Single(base, ["--cores", "2", *BOUNDED])
        cluster = None
        try:
            cluster = Cluster(base, [*BOUNDED, *FAST_FAILURE_DETECTION, "--default-replication-factor", "3",
                                     "--topic-default", "min.insync.replicas=2"])
            time.sleep(3)  # registration and the first metadata on every broker
            results = measure({"single": (single, 1), "cluster": (cluster, 3)}, args.seconds, args.rounds, base)
            single.stop()
            failovers = failover_times(cluster, args.failovers)
        finally:
            single.stop()
            if cluster:
                cluster.stop()
    finally:
        subprocess.run(["rm", "-rf", str(base)])
    single_result, cluster_result = results["single"], results["cluster"]
    markdown = render(single_result, cluster_result, failovers, args.seconds, args.rounds)
    (OUT / "cluster.md").write_text(markdown)
    print(markdown)
    update_docs(markdown, BEGIN, END, "Cluster: three brokers against one (`make bench`)")


if __name__ == "__main__":
    main()
