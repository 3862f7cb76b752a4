"""A sluice cluster of real `sluice serve` processes on loopback: every node a controller
voter and a broker (combined mode), each with its own data directory and ports; brokers
that are not voters can join. Also the producer and checks the cluster tests share."""
import collections
import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conftest import Broker, free_port


class Cluster:
    def __init__(self, base: Path, nodes=3, *flags, hosts=None, wrappers=None):
        """`hosts[node]` is the address a node listens on (loopback by default),
        `wrappers[node]` what it runs inside (a network namespace)."""
        hosts = hosts or {node: "127.0.0.1" for node in range(1, nodes + 1)}
        wrappers = wrappers or {}
        self.base = base
        self.flags = flags
        self.controller_ports = {node: free_port() for node in range(1, nodes + 1)}
        self.voters = ",".join(f"{node}@{hosts[node]}:{port}" for node, port in self.controller_ports.items())
        self.brokers = {}
        for node, port in self.controller_ports.items():
            self.brokers[node] = self._broker(node, hosts[node], wrappers.get(node, ()),
                                              "--controller-listen", f"{hosts[node]}:{port}")

    def _broker(self, node, host, wrapper, *voter_flags):
        (self.base / f"node-{node}").mkdir(parents=True, exist_ok=True)
        return Broker(
            self.base / f"node-{node}" / "data",
            "--node-id", str(node),
            *voter_flags,
            "--controller-quorum-voters", self.voters,
            "--cores", "1",
            # Fast failure detection for tests: a killed leader is fenced in ~2 s.
            "--broker-heartbeat-interval-ms", "300",
            "--broker-session-timeout-ms", "2000",
            *self.flags,
            host=host,
            port=free_port() if host == "127.0.0.1" else 9092,
            wrapper=wrapper,
        )

    def add_broker(self, node):
        """Starts a broker that is not a controller voter (it joins by the voters list)
        and waits until the metadata lists it."""
        self.brokers[node] = self._broker(node, "127.0.0.1", ())
        self.brokers[node].start()
        self.wait_for(lambda md: node in md.brokers, f"broker {node} registered")
        return self.brokers[node]

    @property
    def bootstrap(self):
        return ",".join(b.address for b in self.brokers.values())

    def start(self):
        for broker in self.brokers.values():
            broker.start()
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})
        self.wait_for(lambda md: len(md.brokers) == len(self.brokers), "every broker registered")
        return self

    def metadata(self, topic=None):
        return self.admin.list_topics(topic, timeout=5)

    def wait_for(self, condition, what, timeout=30):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.metadata()
                if condition(last):
                    return last
            except Exception as error:  # a broker of the bootstrap list may be down
                last = error
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last metadata: {last}")

    def partition(self, topic, partition, timeout=30, via=None):
        """A partition's metadata, asked again while a broker of the bootstrap list is
        unreachable; `via` names the nodes to ask (all by default)."""
        admin = self.admin
        if via is not None:
            addresses = ",".join(self.brokers[node].address for node in via)
            admin = AdminClient({"bootstrap.servers": addresses, "log_level": 2})
        deadline = time.time() + timeout
        while True:
            try:
                return admin.list_topics(topic, timeout=5).topics[topic].partitions[partition]
            except Exception:  # noqa: BLE001 - retried, then reported
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, sig=signal.SIGTERM):
        # Last started first: brokers that are not voters go before the quorum does, and
        # the voters keep a majority for each other's controlled shutdown but the last.
        for broker in reversed(list(self.brokers.values())):
            broker.stop(sig)

    def crashed(self):
        return [(node, b.exited_by_itself()) for node, b in self.brokers.items() if b.exited_by_itself() is not None]


def admin_status(broker: Broker) -> dict:
    """The broker's admin socket `status` reply."""
    return admin_request(broker, "status")


def log_start(broker: Broker, topic: str, partition: int):
    """A partition's log start offset on a broker (None if it holds no replica)."""
    for report in admin_request(broker, "partitions")["partitions"]:
        if report["topic"] == topic and report["partition"] == partition:
            return report["log_start_offset"]
    return None


def admin_request(broker: Broker, command: str) -> dict:
    """The broker's admin socket reply to a command without arguments."""
    import json
    import socket as sockets
    with sockets.socket(sockets.AF_UNIX) as connection:
        connection.settimeout(5)
        connection.connect(str(broker.data_dir / "admin.sock"))
        connection.sendall(json.dumps({"command": command}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


def active_controller(cluster) -> int:
    """The node id of the active controller, as the live voters report it."""
    for broker in cluster.brokers.values():
        if broker.process is None or broker.process.poll() is not None:
            continue
        try:
            leader = admin_status(broker)["cluster"]["controller"]["leader"]
        except (OSError, KeyError, TypeError, ValueError):
            continue
        if leader is not None:
            return leader
    raise AssertionError("no live voter knows an active controller")


def log_bytes(broker: Broker, topic: str, partition: int) -> bytes:
    """A stopped broker's log of a partition: its segments' bytes in offset order."""
    directory = broker.data_dir / f"{topic}-{partition}"
    segments = sorted(directory.glob("*.log"), key=lambda p: int(p.stem))
    return b"".join(p.read_bytes() for p in segments)


@pytest.fixture(name="cluster")
def running_cluster(tmp_path):
    """A started 3-node cluster, killed afterwards; fails the test if a broker exited by
    itself. Test modules import it to use the `cluster` fixture."""
    cluster = Cluster(tmp_path).start()
    yield cluster
    crashed = cluster.crashed()
    cluster.stop(signal.SIGKILL)
    assert not crashed, f"brokers exited by themselves: {crashed}"


class KeepProducing(threading.Thread):
    """An idempotent acks=all producer sending numbered values round-robin over a
    topic's partitions until stopped."""

    def __init__(self, bootstrap, topic, partitions):
        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 5, "message.timeout.ms": 120000, "topic.metadata.refresh.interval.ms": 500,
            "log_level": 2,  # brokers are killed on purpose: their disconnects are expected
        })
        self.acked = []  # (partition, offset, value) in acknowledgement order
        self.failed = []
        self.sent = 0
        self.stopping = threading.Event()

    def on_delivery(self, error, message):
        if error is None:
            self.acked.append((message.partition(), message.offset(), message.value()))
        else:
            self.failed.append(str(error))

    def run(self):
        while not self.stopping.is_set() and self.sent < 2_000_000:
            try:
                self.producer.produce(self.topic, value=b"%09d" % self.sent, partition=self.sent % self.partitions,
                                      on_delivery=self.on_delivery)
                self.sent += 1
            except BufferError:
                self.producer.poll(0.05)
            self.producer.poll(0)
            if self.sent % 200 == 0:
                time.sleep(0.01)  # a steady load, not a flood the brokers queue up
        assert self.producer.flush(120) == 0, "every message answered"

    def wait_for_more(self, count, timeout=30):
        """Waits until `count` more records than now are acknowledged."""
        target = len(self.acked) + count
        deadline = time.time() + timeout
        while len(self.acked) < target and time.time() < deadline:
            time.sleep(0.05)
        assert len(self.acked) >= target, "produce continues"

    def finish(self):
        self.stopping.set()
        self.join(180)
        assert not self.is_alive()
        print(f"sent {self.sent}, acknowledged {len(self.acked)}, failed {len(self.failed)}")


def read_partition(bootstrap, topic, partition, end):
    """The records of a partition from offset 0 up to `end`, as (offset, value)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100, "log_level": 2})
    consumer.assign([TopicPartition(topic, partition, 0)])
    records = []
    deadline = time.time() + 60
    while len(records) < end and time.time() < deadline:
        message = consumer.poll(1)
        if message is None or message.error():
            continue
        records.append((message.offset(), message.value()))
    consumer.close()
    return records


def check_acknowledged(bootstrap, producer: KeepProducing):
    """Every acknowledged record is in the log once, at its offset, in send order."""
    without_offset = [(partition, value) for partition, offset, value in producer.acked if offset is None]
    assert not without_offset, f"acknowledged without an offset: {len(without_offset)}, first {without_offset[:5]}"
    by_partition = collections.defaultdict(list)
    for partition, offset, value in producer.acked:
        by_partition[partition].append((offset, value))
    for partition in range(producer.partitions):
        acked = by_partition[partition]
        assert acked, f"p{partition}: nothing acknowledged"
        end = max(offset for offset, _ in acked) + 1
        log = dict(read_partition(bootstrap, producer.topic, partition, end))
        values = collections.Counter(log.values())
        for offset, value in acked:
            assert log.get(offset) == value, f"p{partition}: acknowledged {value!r} at {offset}, log has {log.get(offset)!r}"
            assert values[value] == 1, f"p{partition}: {value!r} stored {values[value]} times"
        sent_order = [int(v) for _, v in sorted(acked)]
        assert sent_order == sorted(sent_order), f"p{partition}: acknowledged records out of send order"
