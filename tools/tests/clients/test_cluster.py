"""Issue 12 acceptance 1: a 3-broker cluster (every node a voter and a broker, real
processes on loopback) keeps every acknowledged record while the leader of a partition is
SIGKILLed and restarted again and again under an idempotent acks=all producer; afterwards
the replicas' logs are byte-identical."""
import collections
import signal
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster, log_bytes

TOPIC = "replicated"
PARTITIONS = 3
KILLS = 10


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path).start()
    yield cluster
    crashed = cluster.crashed()
    cluster.stop(signal.SIGKILL)
    assert not crashed, f"brokers exited by themselves: {crashed}"


def create_topic(cluster):
    futures = cluster.admin.create_topics(
        [NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})], request_timeout=15)
    futures[TOPIC].result(timeout=20)
    cluster.wait_for(lambda md: TOPIC in md.topics and all(
        p.leader >= 0 for p in md.topics[TOPIC].partitions.values()), "the topic's leaders")


class KeepProducing(threading.Thread):
    """An idempotent acks=all producer sending numbered values until stopped."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True)
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
                self.producer.produce(TOPIC, value=b"%09d" % self.sent, partition=self.sent % PARTITIONS,
                                      on_delivery=self.on_delivery)
                self.sent += 1
            except BufferError:
                self.producer.poll(0.05)
            self.producer.poll(0)
            if self.sent % 200 == 0:
                time.sleep(0.01)  # a steady load, not a flood the brokers queue up
        assert self.producer.flush(120) == 0, "every message answered"


def read_partition(cluster, partition, end):
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "reader",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 100, "log_level": 2})
    consumer.assign([TopicPartition(TOPIC, partition, 0)])
    records = []
    deadline = time.time() + 60
    while len(records) < end and time.time() < deadline:
        message = consumer.poll(1)
        if message is None or message.error():
            continue
        records.append((message.offset(), message.value()))
    consumer.close()
    return records


def test_acknowledged_records_survive_ten_leader_kills(cluster):
    create_topic(cluster)
    producer = KeepProducing(cluster.bootstrap)
    producer.start()
    time.sleep(1)
    failovers = []
    for _ in range(KILLS):
        leader = cluster.partition(TOPIC, 0).leader
        killed = cluster.brokers[leader]
        acked_before = len(producer.acked)
        started = time.time()
        killed.stop(signal.SIGKILL)
        cluster.wait_for(lambda md: md.topics[TOPIC].partitions[0].leader not in (-1, leader),
                         f"a new leader after killing {leader}")
        failovers.append(time.time() - started)
        killed.start()
        cluster.wait_for(lambda md: all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()),
                         f"node {leader} back in every ISR", timeout=60)
        deadline = time.time() + 30
        while len(producer.acked) < acked_before + 100 and time.time() < deadline:
            time.sleep(0.05)
        assert len(producer.acked) >= acked_before + 100, "produce continues after the failover"
    producer.stopping.set()
    producer.join(180)
    assert not producer.is_alive()
    print(f"failovers (kill -> new leader in metadata): {[round(f, 2) for f in failovers]}")
    print(f"sent {producer.sent}, acknowledged {len(producer.acked)}, failed {len(producer.failed)}")
    assert len(producer.acked) > 1000

    by_partition = collections.defaultdict(list)
    for partition, offset, value in producer.acked:
        by_partition[partition].append((offset, value))
    for partition in range(PARTITIONS):
        acked = by_partition[partition]
        end = max(offset for offset, _ in acked) + 1
        log = dict(read_partition(cluster, partition, end))
        values = collections.Counter(log.values())
        for offset, value in acked:
            assert log.get(offset) == value, f"p{partition}: acknowledged {value!r} at {offset}, log has {log.get(offset)!r}"
            assert values[value] == 1, f"p{partition}: {value!r} stored {values[value]} times"
        sent_order = [int(v) for _, v in sorted(acked)]
        assert sent_order == sorted(sent_order), f"p{partition}: acknowledged records out of send order"

    # Healed: every replica holds the same bytes once the followers caught up.
    cluster.wait_for(lambda md: all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()), "whole ISRs")
    time.sleep(2)
    cluster.stop(signal.SIGTERM)
    for partition in range(PARTITIONS):
        logs = {node: log_bytes(broker, TOPIC, partition) for node, broker in cluster.brokers.items()}
        assert len(set(logs.values())) == 1, f"p{partition}: replicas differ: { {n: len(b) for n, b in logs.items()} }"
        assert len(logs[1]) > 0
