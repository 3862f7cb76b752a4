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
from confluent_kafka.admin import AdminClient, NewTopic

from cluster import KeepProducing, check_acknowledged, log_bytes, running_cluster  # noqa: F401 (the fixture)

TOPIC = "replicated"
PARTITIONS = 3
KILLS = 10


def create_topic(cluster):
    futures = cluster.admin.create_topics(
        [NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})], request_timeout=15)
    futures[TOPIC].result(timeout=20)
    cluster.wait_for(lambda md: TOPIC in md.topics and all(
        p.leader >= 0 for p in md.topics[TOPIC].partitions.values()), "the topic's leaders")


def end_offset(consumer, topic, partition, timeout=30):
    """The partition's high watermark, asked again while leadership moves."""
    deadline = time.time() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)[1]
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_acknowledged_records_survive_ten_leader_kills(cluster):
    create_topic(cluster)
    producer = KeepProducing(cluster.bootstrap, TOPIC, PARTITIONS)
    producer.start()
    time.sleep(1)
    failovers = []
    for _ in range(KILLS):
        leader = cluster.partition(TOPIC, 0).leader
        killed = cluster.brokers[leader]
        started = time.time()
        killed.stop(signal.SIGKILL)
        cluster.wait_for(lambda md: md.topics[TOPIC].partitions[0].leader not in (-1, leader),
                         f"a new leader after killing {leader}")
        failovers.append(time.time() - started)
        killed.start()
        cluster.wait_for(lambda md: all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()),
                         f"node {leader} back in every ISR", timeout=60)
        producer.wait_for_more(100)
    producer.finish()
    print(f"failovers (kill -> new leader in metadata): {[round(f, 2) for f in failovers]}")
    assert len(producer.acked) > 1000
    check_acknowledged(cluster.bootstrap, producer)

    # Healed: every replica holds the same bytes once the followers caught up.
    cluster.wait_for(lambda md: all(len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()), "whole ISRs")
    time.sleep(2)
    cluster.stop(signal.SIGTERM)
    for partition in range(PARTITIONS):
        logs = {node: log_bytes(broker, TOPIC, partition) for node, broker in cluster.brokers.items()}
        assert len(set(logs.values())) == 1, f"p{partition}: replicas differ: { {n: len(b) for n, b in logs.items()} }"
        assert len(logs[1]) > 0


def test_kafka_tools_see_the_cluster_as_kafka_would(cluster):
    """Issue 12 acceptance 6: kcat -L, confluent-kafka's AdminClient and kafka-python."""
    import subprocess

    from confluent_kafka import TopicCollection
    from kafka.admin import KafkaAdminClient

    futures = cluster.admin.create_topics([NewTopic("described", 4, 3)], request_timeout=15)
    futures["described"].result(timeout=20)
    refused = cluster.admin.create_topics([NewTopic("too-wide", 1, 4)], request_timeout=15)["too-wide"]
    with pytest.raises(Exception, match="INVALID_REPLICATION_FACTOR|replication factor"):
        refused.result(timeout=20)
    cluster.wait_for(lambda md: "described" in md.topics, "the topic")

    described = cluster.admin.describe_topics(TopicCollection(["described"])) ["described"].result(timeout=20)
    assert len(described.partitions) == 4
    for partition in described.partitions:
        assert len(partition.replicas) == 3 and len(partition.isr) == 3
        assert partition.leader.id in {r.id for r in partition.replicas}
    leaders = {p.leader.id for p in described.partitions}
    assert len(leaders) >= 2, f"leadership is spread over the brokers: {leaders}"

    info = cluster.admin.describe_cluster().result(timeout=20)
    assert sorted(node.id for node in info.nodes) == [1, 2, 3]
    assert info.cluster_id, "a cluster id"
    ids = {cluster.admin.describe_cluster().result(timeout=20).cluster_id for _ in range(3)}
    assert len(ids) == 1

    def kcat_listing():
        return subprocess.run(["kcat", "-b", cluster.brokers[2].address, "-L", "-t", "described"],
                              capture_output=True, text=True, timeout=30, check=True).stdout
    listing = kcat_listing()
    deadline = time.time() + 10
    while "with 4 partitions" not in listing and time.time() < deadline:  # metadata reaches each broker
        time.sleep(0.1)
        listing = kcat_listing()
    assert " 3 brokers:" in listing, listing
    for partition in range(4):
        assert f"partition {partition}, leader " in listing, listing
    assert "replicas: " in listing and "isrs: " in listing

    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource("broker", "2")
    broker_configs = cluster.admin.describe_configs([resource])[resource].result(20)
    assert broker_configs["node.id"].value == "2"
    assert broker_configs["controller.quorum.voters"].value == cluster.voters
    assert broker_configs["broker.session.timeout.ms"].value == "2000"

    python_admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        nodes = python_admin.describe_cluster()
        assert sorted(b["broker_id"] for b in nodes["brokers"]) == [1, 2, 3], nodes
        topic = python_admin.describe_topics(["described"])[0]
        assert topic["error_code"] == 0 and len(topic["partitions"]) == 4
        assert all(len(p["replica_nodes"]) == 3 and len(p["isr_nodes"]) == 3 for p in topic["partitions"]), topic
    finally:
        python_admin.close()


def test_topics_are_administered_through_the_controller(cluster):
    """CreateTopics with a manual assignment, CreatePartitions (placed and assigned),
    config changes and DeleteTopics go through the controller from any broker, and every
    broker's metadata, configs and data directory follow."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions

    admin = cluster.admin
    admin.create_topics([NewTopic("assigned", 2, replica_assignment=[[1, 2], [2, 3]])])["assigned"].result(20)
    md = cluster.wait_for(lambda md: "assigned" in md.topics and len(md.topics["assigned"].partitions) == 2,
                          "the assigned topic")
    assert [md.topics["assigned"].partitions[p].replicas for p in (0, 1)] == [[1, 2], [2, 3]]
    assert md.topics["assigned"].partitions[0].leader == 1

    bad = admin.create_partitions([NewPartitions("assigned", 3, replica_assignment=[[1, 2, 3]])])["assigned"]
    with pytest.raises(Exception, match="INVALID_REPLICA_ASSIGNMENT"):
        bad.result(20)
    admin.create_partitions([NewPartitions("assigned", 3, replica_assignment=[[3, 1]])])["assigned"].result(20)
    admin.create_partitions([NewPartitions("assigned", 5)])["assigned"].result(20)
    md = cluster.wait_for(lambda md: len(md.topics["assigned"].partitions) == 5, "five partitions")
    assert md.topics["assigned"].partitions[2].replicas == [3, 1]
    assert all(len(md.topics["assigned"].partitions[p].replicas) == 2 for p in (3, 4))

    change = ConfigResource("topic", "assigned", incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(20)
    refused = ConfigResource("topic", "assigned", incremental_configs=[
        ConfigEntry("min.cleanable.dirty.ratio", "2", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(Exception, match="INVALID_CONFIG"):
        admin.incremental_alter_configs([refused])[refused].result(20)
    for node, broker in cluster.brokers.items():
        one = AdminClient({"bootstrap.servers": broker.address, "log_level": 2})
        resource = ConfigResource("topic", "assigned")
        deadline = time.time() + 10
        while True:
            value = one.describe_configs([resource])[resource].result(20)["retention.ms"].value
            if value == "3600000" or time.time() > deadline:
                break
            time.sleep(0.1)
        assert value == "3600000", f"broker {node} describes retention.ms={value}"

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "log_level": 2})
    for partition in range(5):
        producer.produce("assigned", b"x", partition=partition)
    assert producer.flush(30) == 0
    admin.delete_topics(["assigned"])["assigned"].result(20)
    cluster.wait_for(lambda md: "assigned" not in md.topics, "the topic gone")
    deadline = time.time() + 15
    while time.time() < deadline:
        left = [(node, d.name) for node, b in cluster.brokers.items() for d in b.data_dir.glob("assigned-*")]
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"deleted partitions still on disk: {left}"


def test_a_group_keeps_consuming_and_keeps_its_offsets_when_its_coordinator_dies(cluster):
    """Issue 12 acceptance 4: three confluent-kafka members of one group consume while the
    broker coordinating the group (the leader of its __consumer_offsets partition) is
    SIGKILLed; no committed offset is lost and every record is consumed."""
    from confluent_kafka import KafkaException
    topic, partitions, group = "events", 6, "survivors"
    cluster.admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])[topic].result(20)
    cluster.wait_for(lambda md: topic in md.topics and all(p.leader >= 0 for p in md.topics[topic].partitions.values()),
                     "the topic's leaders")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True, "log_level": 2})

    def produce(count, start):
        for i in range(start, start + count):
            producer.produce(topic, value=b"%06d" % i, partition=i % partitions)
        assert producer.flush(60) == 0

    produce(3000, 0)
    committed = {}  # partition -> highest offset a commit acknowledged
    consumed = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def member(index):
        consumer = Consumer({
            "bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "client.id": f"member-{index}", "log_level": 2,
        })
        consumer.subscribe([topic])
        try:
            while not stop.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                with lock:
                    consumed[message.value()] += 1
                try:
                    for position in consumer.commit(message=message, asynchronous=False):
                        with lock:
                            committed[position.partition] = max(committed.get(position.partition, 0), position.offset)
                except KafkaException:
                    pass  # the coordinator moves: the next commit goes to the new one
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(repr(error))
        finally:
            consumer.close()

    members = [threading.Thread(target=member, args=(i,), daemon=True) for i in range(3)]
    for thread in members:
        thread.start()
    deadline = time.time() + 60
    while len(consumed) < 1000 and time.time() < deadline:
        time.sleep(0.1)
    assert len(consumed) >= 1000, "the group consumes"

    coordinator = cluster.admin.describe_consumer_groups([group])[group].result(20).coordinator.id
    with lock:
        committed_before_kill = dict(committed)
    cluster.brokers[coordinator].stop(signal.SIGKILL)
    produce(3000, 3000)
    cluster.brokers[coordinator].start()
    deadline = time.time() + 90
    while len(consumed) < 6000 and time.time() < deadline:
        time.sleep(0.2)
    stop.set()
    for thread in members:
        thread.join(30)
    assert not errors, errors
    missing = [i for i in range(6000) if consumed[b"%06d" % i] == 0]
    assert not missing, f"{len(missing)} records never consumed, e.g. {missing[:5]}"

    # A consumer of the group reads the committed offsets: librdkafka's AdminClient
    # ListConsumerGroupOffsets crashes (in rd_kafka_cgrp_op) when a moved coordinator
    # answers NOT_COORDINATOR, where a consumer retries.
    reader = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "log_level": 2})
    positions = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
    ends = {p: end_offset(reader, topic, p) for p in range(partitions)}
    reader.close()
    stored = {tp.partition: tp.offset for tp in positions}
    for partition, offset in committed_before_kill.items():
        assert stored.get(partition, -1) >= offset, (
            f"partition {partition}: committed {offset} before the coordinator died, {stored.get(partition)} now")
    for partition, end in ends.items():
        assert stored.get(partition) == end, f"partition {partition}: committed {stored.get(partition)}, end {end}"


def test_sigterm_hands_leadership_over_before_the_broker_exits(cluster):
    """Controlled shutdown: a stopping leader's partitions have new leaders when its
    process has exited, well before its session would have expired."""
    cluster.admin.create_topics([NewTopic("handover", 3, 3)])["handover"].result(20)
    metadata = cluster.wait_for(lambda md: "handover" in md.topics and all(
        p.leader >= 0 for p in md.topics["handover"].partitions.values()), "the topic's leaders")
    leader = metadata.topics["handover"].partitions[0].leader
    led = [p.id for p in metadata.topics["handover"].partitions.values() if p.leader == leader]
    assert cluster.brokers[leader].stop(signal.SIGTERM) == 0
    exited = time.time()
    after = cluster.wait_for(lambda md: all(
        md.topics["handover"].partitions[p].leader not in (-1, leader) for p in led), "leaders moved", timeout=10)
    moved_after = time.time() - exited
    assert moved_after < 1.0, f"leadership moved {moved_after:.2f} s after exit: not handed over"
    for p in led:
        assert leader not in after.topics["handover"].partitions[p].isrs


def test_cluster_status_names_under_replicated_partitions(cluster):
    """`sluice cluster status`: brokers, controller, and what a dead broker leaves
    under-replicated."""
    import subprocess
    from conftest import SLUICE

    cluster.admin.create_topics([NewTopic("watched", 2, 3)])["watched"].result(20)
    cluster.wait_for(lambda md: "watched" in md.topics and all(
        len(p.isrs) == 3 for p in md.topics["watched"].partitions.values()), "whole ISRs")

    def status():
        return subprocess.run([str(SLUICE), "cluster", "status", "--brokers", cluster.brokers[1].address],
                              capture_output=True, text=True, timeout=30, check=True).stdout

    healthy = status()
    assert "under-replicated: 0, offline: 0" in healthy, healthy
    assert all(f"  {node}  {broker.address}" in healthy for node, broker in cluster.brokers.items()), healthy
    cluster.brokers[3].stop(signal.SIGKILL)
    cluster.wait_for(lambda md: all(len(p.isrs) == 2 for p in md.topics["watched"].partitions.values()),
                     "the dead broker out of the ISRs")
    degraded = status()
    assert "under-replicated: 0" not in degraded, degraded
    assert "watched-0" in degraded and "watched-1" in degraded, degraded
    assert f"  3  {cluster.brokers[3].address}" not in degraded, degraded
