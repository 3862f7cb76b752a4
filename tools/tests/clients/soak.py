"""The soak harness: one real broker under the mix the client tests make — producers and
consumers starting and stopping, consumer groups rebalancing, long polls cut off by
closing consumers, fresh topics created and deleted, segments rolled and deleted by
retention and compaction, short-lived and broken raw connections, the bundled load
generator — with stalls (SIGSTOP/SIGCONT) and crashes (SIGKILL, restart) in between.

It fails when the broker dies by itself (any abort, panic or signal it did not get from
us), when a record acknowledged with acks=all to the ledger topic is not read back, or
when something hangs: a part of the mix whose step has not returned for STUCK_SECONDS, or
consumer groups that receive nothing for STUCK_SECONDS while the ledger keeps growing
(groups must rebalance and consume again after every restart).

`make soak` runs it for SOAK_SECONDS (default 600); `test_soak.py` runs a short one in
`make test`. Every loop stops at the deadline; the broker's core dump limit is raised so
an abort leaves a core file in the work directory for gdb.

    .venv/bin/python tools/tests/clients/soak.py --seconds 600 --work-dir target/soak
"""
import argparse
import itertools
import json
import random
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import SLUICE, Broker  # noqa: E402

LEDGER = "soak-ledger"
LEDGER_PARTITIONS = 4
FANOUT = "soak-fanout"
FANOUT_PARTITIONS = 8
# Ledger values start with this many bytes of id; the rest is padding.
ID_BYTES = 13
# Longer than any step takes, restarts and stalls included (a group member's step is at
# most 6 s of polling plus its close; a restart takes seconds): no progress for this long
# is a hang.
STUCK_SECONDS = 120


class Soak:
    """One soak run. `run()` returns the report; failures are listed in it."""

    def __init__(self, work_dir, seconds, seed, cores=2, stall_every=6.0, kill_every=20.0):
        self.work_dir = Path(work_dir)
        self.broker = Broker(self.work_dir / "data", "--cores", str(cores))
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.seed = seed
        self.stall_every = stall_every
        self.kill_every = kill_every
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = set()
        self.ids = itertools.count()
        self.topics = itertools.count()
        self.iterations = {}
        self.client_errors = {}
        self.failures = []
        self.stalls = 0
        self.kills = 0
        # Liveness: when each worker's step last returned, and when a group member last
        # received a ledger record while the ledger was growing.
        self.step_returned = {}
        self.group_received_at = time.monotonic()
        self.group_records = 0
        self.ledger_acked_at = None

    # --- bookkeeping -------------------------------------------------------------------

    def note(self, table, name, n=1):
        with self.lock:
            table[name] = table.get(name, 0) + n

    def worker(self, name, step, pause=(0.0, 0.3)):
        """Runs `step(rng)` until the soak stops. Client-side errors are expected while the
        broker is stalled or down and only counted; the broker's health is judged apart."""
        rng = random.Random(f"{self.seed}-{name}")

        def loop():
            while not self.stop.is_set():
                self.step_returned[name] = time.monotonic()
                try:
                    step(rng)
                    self.note(self.iterations, name)
                except Exception as error:  # noqa: BLE001 -- counted; the broker is judged apart
                    self.note(self.client_errors, f"{name}: {type(error).__name__}")
                self.step_returned[name] = time.monotonic()
                self.stop.wait(rng.uniform(*pause))

        return threading.Thread(target=loop, name=name, daemon=True)

    @property
    def address(self):
        return self.broker.address

    def client_config(self, **extra):
        return {"bootstrap.servers": self.address, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 300,
                "socket.timeout.ms": 10000, "log_level": 2, **extra}

    # --- the mix -----------------------------------------------------------------------

    def ledger_producer(self, rng):
        """acks=all to the ledger; what is acknowledged must be read back at the end."""
        producer = Producer(self.client_config(
            acks="all", **{"enable.idempotence": rng.random() < 0.5, "linger.ms": rng.choice([0, 1, 5]),
                           "message.timeout.ms": 15000}))
        acked = []

        def delivered(error, message):
            if error is None:
                acked.append(message.value()[:ID_BYTES])
                self.ledger_acked_at = time.monotonic()

        for _ in range(rng.randint(100, 1000)):
            value = b"L%012d" % next(self.ids)
            # Up to 4 KB: the ledger keeps every record until the end (about 8 GB an hour).
            value += b"." * rng.choice([0, 10, 100, 1000, 4000])
            while True:
                try:
                    producer.produce(LEDGER, value=value, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        producer.flush(20)
        with self.lock:
            self.acked.update(acked)

    def long_poll_fanout(self, rng):
        """Consumers of a topic whose partitions sit on every shard, fed a trickle: each
        fetch long-polls on all shards and the first partition with data answers it, so
        the waits on the other shards are cut short — cross-shard cancellation, over and
        over."""
        consumers = [Consumer(self.client_config(**{
            "group.id": f"soak-fanout-{n}", "enable.auto.commit": False, "fetch.wait.max.ms": 500,
            "fetch.min.bytes": 1})) for n in range(3)]
        producer = Producer(self.client_config(acks="1", **{"linger.ms": 0}))
        try:
            for consumer in consumers:
                consumer.assign([TopicPartition(FANOUT, p, -1) for p in range(FANOUT_PARTITIONS)])
            until = time.monotonic() + rng.uniform(2.0, 6.0)
            while time.monotonic() < until and not self.stop.is_set():
                producer.produce(FANOUT, value=b"f", partition=rng.randrange(FANOUT_PARTITIONS))
                producer.poll(0)
                for consumer in consumers:
                    consumer.consume(100, timeout=0.01)
            producer.flush(10)
        finally:
            for consumer in consumers:
                consumer.close()

    def churn(self, rng):
        """A fresh topic with small segments and short retention (or compaction), filled
        fast, sometimes grown, mostly deleted again: rolls, retention and compaction
        deletes, partition creation and deletion under load."""
        admin = AdminClient(self.client_config())
        name = f"soak-churn-{next(self.topics)}"
        compact = rng.random() < 0.3
        configs = {"segment.bytes": str(rng.choice([65536, 262144, 1048576]))}
        if compact:
            configs.update({"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"})
        else:
            configs["retention.ms"] = str(rng.randint(300, 3000))
        partitions = rng.randint(1, 4)
        admin.create_topics([NewTopic(name, partitions, 1, config=configs)])[name].result(15)
        producer = Producer(self.client_config(acks=rng.choice(["1", "all"]), **{"linger.ms": 2}))
        for n in range(rng.randint(1000, 8000)):
            key = b"k%d" % rng.randint(0, 50) if compact else None
            while True:
                try:
                    producer.produce(name, key=key, value=b"c" * rng.choice([100, 1000, 4000]))
                    break
                except BufferError:
                    producer.poll(0.05)
            if n % 500 == 0:
                producer.poll(0)
        producer.flush(20)
        if rng.random() < 0.3:
            admin.create_partitions([NewPartitions(name, partitions + 2)])[name].result(15)
        self.stop.wait(rng.uniform(0.5, 3.0))  # let retention or compaction see it
        if rng.random() < 0.8:
            admin.delete_topics([name])[name].result(15)

    def group_consumer(self, rng):
        """A member of one of three groups on the ledger: joins, long-polls, commits
        sometimes, and leaves by closing mid-poll (cutting its fetches short)."""
        consumer = Consumer(self.client_config(**{
            "group.id": f"soak-group-{rng.randint(0, 2)}", "auto.offset.reset": "earliest",
            "enable.auto.commit": rng.random() < 0.5, "session.timeout.ms": 6000,
            "fetch.wait.max.ms": rng.choice([100, 500, 3000]), "check.crcs": True}))
        try:
            consumer.subscribe([LEDGER])
            until = time.monotonic() + rng.uniform(1.0, 6.0)
            while time.monotonic() < until and not self.stop.is_set():
                for message in consumer.consume(500, timeout=0.5):
                    if message.error() is None:
                        self.group_received_at = time.monotonic()
                        self.group_records += 1
                    elif not message.error().retriable():
                        self.note(self.client_errors, f"group_consumer: {message.error().name()}")
                if rng.random() < 0.2:
                    try:
                        consumer.commit(asynchronous=False)
                    except KafkaException:
                        pass  # nothing to commit yet, or a rebalance in progress
        finally:
            consumer.close()

    def raw_connection(self, rng):
        """A connection that does one thing and goes: nothing, a request read or not, half
        a frame, a bogus size."""
        with socket.create_connection(("127.0.0.1", self.broker.port), timeout=5) as conn:
            choice = rng.randint(0, 4)
            client_id = b"soak-raw"
            api_versions = struct.pack(">hhih", 18, 0, rng.randint(0, 1 << 30), len(client_id)) + client_id
            frame = struct.pack(">i", len(api_versions)) + api_versions
            if choice == 1:
                conn.sendall(frame)
                conn.recv(65536)
            elif choice == 2:
                conn.sendall(frame * rng.randint(1, 50))  # pipelined, never read
            elif choice == 3:
                conn.sendall(frame[: rng.randint(1, len(frame) - 1)])
            elif choice == 4:
                conn.sendall(struct.pack(">i", rng.choice([-1, 1 << 30, 3])) + b"\0\0\0")

    def load_generator(self, rng):
        """The bundled load generator: a short e2e run on a retention topic."""
        subprocess.run([str(SLUICE), "bench", "e2e", "-b", self.address, "-t", f"soak-bench-{rng.randint(0, 1)}",
                        "--partitions", "3", "-r", str(rng.choice([2000, 10000])), "-d", "3", "--warmup", "0",
                        "-p", "2", "-c", "2", "--topic-config", "retention.ms=2000",
                        "--topic-config", "segment.bytes=262144"],
                       capture_output=True, timeout=60, check=True)

    # --- the run -----------------------------------------------------------------------

    def check_liveness(self):
        """Fails the run on a hang: a step that has not returned, or consumer groups that
        get nothing while acks=all records keep being added to the ledger they read."""
        now = time.monotonic()
        for name, returned in list(self.step_returned.items()):
            if now - returned > STUCK_SECONDS:
                self.failures.append(f"{name} has been in one step for {now - returned:.0f} s: a hang")
                return False
        growing = self.ledger_acked_at is not None and now - self.ledger_acked_at < 5
        if growing and now - self.group_received_at > STUCK_SECONDS:
            self.failures.append(f"consumer groups received no ledger record for {now - self.group_received_at:.0f} s "
                                 f"while the ledger grew ({self.kills} restarts so far): a hang")
            return False
        return True

    def check_broker(self):
        status = self.broker.exited_by_itself()
        if status is not None:
            self.failures.append(f"broker exited by itself with status {status}:\n{self.broker.log_tail(60)}")
            return False
        return True

    def chaos(self, deadline):
        next_stall = time.monotonic() + self.rng.uniform(1, self.stall_every)
        next_kill = time.monotonic() + self.kill_every
        while time.monotonic() < deadline and self.check_broker() and self.check_liveness():
            now = time.monotonic()
            if now >= next_kill:
                self.broker.stop(signal.SIGKILL)
                self.broker.start()
                self.kills += 1
                next_kill = now + self.kill_every * self.rng.uniform(0.6, 1.4)
            elif now >= next_stall:
                self.broker.process.send_signal(signal.SIGSTOP)
                time.sleep(self.rng.uniform(0.2, 1.0))
                self.broker.process.send_signal(signal.SIGCONT)
                self.stalls += 1
                next_stall = now + self.stall_every * self.rng.uniform(0.5, 1.5)
            time.sleep(0.1)

    def read_ledger(self):
        """The ids of every record in the ledger, read from offset 0 to the end."""
        consumer = Consumer(self.client_config(**{"group.id": "soak-verify", "enable.auto.commit": False,
                                                   "check.crcs": True}))
        try:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(LEDGER, p), timeout=15)[1]
                    for p in range(LEDGER_PARTITIONS)}
            consumer.assign([TopicPartition(LEDGER, p, 0) for p in range(LEDGER_PARTITIONS)])
            seen, positions = set(), {p: 0 for p in range(LEDGER_PARTITIONS)}
            records = sum(ends.values())
            deadline = time.monotonic() + 120 + records / 20_000  # ASan builds read slowly
            while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
                for message in consumer.consume(5000, timeout=0.5):
                    if message.error() is not None:
                        raise AssertionError(f"reading the ledger: {message.error()}")
                    seen.add(message.value()[:ID_BYTES])
                    positions[message.partition()] = message.offset() + 1
            return seen, ends, positions
        finally:
            consumer.close()

    def run(self):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.broker.start()
        admin = AdminClient(self.client_config())
        created = admin.create_topics([NewTopic(LEDGER, LEDGER_PARTITIONS, 1),
                                       NewTopic(FANOUT, FANOUT_PARTITIONS, 1, config={"retention.ms": "10000"})])
        for future in created.values():
            future.result(15)
        workers = [
            self.worker("ledger_producer", self.ledger_producer),
            self.worker("ledger_producer_2", self.ledger_producer),
            self.worker("churn", self.churn),
            self.worker("group_consumer", self.group_consumer, pause=(0.0, 1.0)),
            self.worker("group_consumer_2", self.group_consumer, pause=(0.0, 1.0)),
            self.worker("raw_connection", self.raw_connection, pause=(0.0, 0.05)),
            self.worker("long_poll_fanout", self.long_poll_fanout, pause=(0.0, 0.5)),
            self.worker("load_generator", self.load_generator, pause=(0.5, 3.0)),
        ]
        for worker in workers:
            worker.start()
        try:
            self.chaos(started + self.seconds)
        finally:
            self.stop.set()
            for worker in workers:
                worker.join(90)
            if any(worker.is_alive() for worker in workers):
                self.failures.append("a worker did not stop within 90 s of the deadline: "
                                     + ", ".join(w.name for w in workers if w.is_alive()))
        if self.check_broker():
            seen, ends, positions = self.read_ledger()
            lost = self.acked - seen
            if any(positions[p] < ends[p] for p in ends):
                self.failures.append(f"the ledger could not be read to its end in time (ends {ends}, "
                                     f"read to {positions}); {len(lost)} acknowledged records not seen yet")
            elif lost:
                self.failures.append(f"{len(lost)} acknowledged ledger records not read back, e.g. "
                                     f"{sorted(lost)[:5]} (ends {ends}, read to {positions})")
            if self.check_broker():
                status = self.broker.stop(signal.SIGTERM)
                if status != 0:
                    self.failures.append(f"SIGTERM stop exited {status}:\n{self.broker.log_tail(60)}")
        log = self.broker.log()
        for marker in ("panicked", "AddressSanitizer", "malloc", "double free"):
            if marker in log:
                self.failures.append(f"broker log mentions {marker!r}:\n{self.broker.log_tail(60)}")
        self.broker.stop(signal.SIGKILL)
        return {
            "seconds": round(time.monotonic() - started, 1), "seed": self.seed, "kills": self.kills,
            "stalls": self.stalls, "acked_ledger_records": len(self.acked),
            "group_records_received": self.group_records, "iterations": self.iterations,
            "client_errors": self.client_errors, "failures": self.failures, "broker_log": str(self.broker.log_path),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--work-dir", default="target/soak")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=60.0, help="mean seconds between SIGKILLs")
    parser.add_argument("--stall-every", type=float, default=10.0, help="mean seconds between SIGSTOP stalls")
    args = parser.parse_args()
    # Aborts leave a core file (kernel.core_pattern permitting) for gdb.
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    work_dir = Path(args.work_dir) / f"run-{args.seed}"
    report = Soak(work_dir, args.seconds, args.seed, cores=args.cores, stall_every=args.stall_every,
                  kill_every=args.kill_every).run()
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    main()
