"""A sluice cluster of real `sluice serve` processes on loopback: every node a controller
voter and a broker (combined mode), each with its own data directory and ports."""
import signal
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from conftest import Broker, free_port


class Cluster:
    def __init__(self, base: Path, nodes=3, *flags):
        self.controller_ports = {node: free_port() for node in range(1, nodes + 1)}
        voters = ",".join(f"{node}@127.0.0.1:{port}" for node, port in self.controller_ports.items())
        self.brokers = {}
        for node, port in self.controller_ports.items():
            self.brokers[node] = Broker(
                base / f"node-{node}" / "data",
                "--node-id", str(node),
                "--controller-listen", f"127.0.0.1:{port}",
                "--controller-quorum-voters", voters,
                "--cores", "1",
                # Fast failure detection for tests: a killed leader is fenced in ~2 s.
                "--broker-heartbeat-interval-ms", "300",
                "--broker-session-timeout-ms", "2000",
                *flags,
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

    def partition(self, topic, partition):
        return self.metadata(topic).topics[topic].partitions[partition]

    def stop(self, sig=signal.SIGTERM):
        for broker in self.brokers.values():
            broker.stop(sig)

    def crashed(self):
        return [(node, b.exited_by_itself()) for node, b in self.brokers.items() if b.exited_by_itself() is not None]


def log_bytes(broker: Broker, topic: str, partition: int) -> bytes:
    """A stopped broker's log of a partition: its segments' bytes in offset order."""
    directory = broker.data_dir / f"{topic}-{partition}"
    segments = sorted(directory.glob("*.log"), key=lambda p: int(p.stem))
    return b"".join(p.read_bytes() for p in segments)
