"""A sluice cluster of real `sluice serve` processes on loopback: every node a controller
voter and a broker (combined mode), each with its own data directory and ports."""
import signal
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from conftest import Broker, free_port


class Cluster:
    def __init__(self, base: Path, nodes=3, *flags, hosts=None, wrappers=None):
        """`hosts[node]` is the address a node listens on (loopback by default),
        `wrappers[node]` what it runs inside (a network namespace)."""
        hosts = hosts or {node: "127.0.0.1" for node in range(1, nodes + 1)}
        wrappers = wrappers or {}
        self.controller_ports = {node: free_port() for node in range(1, nodes + 1)}
        voters = ",".join(f"{node}@{hosts[node]}:{port}" for node, port in self.controller_ports.items())
        self.brokers = {}
        for node, port in self.controller_ports.items():
            self.brokers[node] = Broker(
                base / f"node-{node}" / "data",
                "--node-id", str(node),
                "--controller-listen", f"{hosts[node]}:{port}",
                "--controller-quorum-voters", voters,
                "--cores", "1",
                # Fast failure detection for tests: a killed leader is fenced in ~2 s.
                "--broker-heartbeat-interval-ms", "300",
                "--broker-session-timeout-ms", "2000",
                *flags,
                host=hosts[node],
                port=free_port() if hosts[node] == "127.0.0.1" else 9092,
                wrapper=wrappers.get(node, ()),
            )
            (base / f"node-{node}").mkdir(parents=True, exist_ok=True)

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
        for broker in self.brokers.values():
            broker.stop(sig)

    def crashed(self):
        return [(node, b.exited_by_itself()) for node, b in self.brokers.items() if b.exited_by_itself() is not None]


def admin_status(broker: Broker) -> dict:
    """The broker's admin socket `status` reply."""
    import json
    import socket as sockets
    with sockets.socket(sockets.AF_UNIX) as connection:
        connection.settimeout(5)
        connection.connect(str(broker.data_dir / "admin.sock"))
        connection.sendall(b'{"command": "status"}\n')
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
