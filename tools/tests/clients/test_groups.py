"""Consumer groups against a real broker: partitions split among a group's members,
committed offsets that survive broker restarts, and kafka-python's group consumer."""
import signal
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

PARTITIONS = 6
MESSAGES = 60_000
# Shorter than Kafka's 3 s so that the tests do not wait long; members started together
# still land in one rebalance.
GROUP_FLAGS = ("--cores", "2", "--group-initial-rebalance-delay-ms", "1000")


def produce(address, topic, count, start=0):
    admin = AdminClient({"bootstrap.servers": address})
    if topic not in admin.list_topics(timeout=10).topics:
        for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
            future.result(30)
    producer = Producer({"bootstrap.servers": address, "linger.ms": 5, "acks": "all"})
    for i in range(start, start + count):
        producer.produce(topic, key=b"%d" % i, value=b"v%d" % i)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def group_consumer(address, group, **extra):
    return Consumer({"bootstrap.servers": address, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000, **extra})


def consume_in_group(address, topic, group, members, expected, seconds=60):
    """Runs `members` consumers in one group until `expected` messages arrived in all;
    each commits after processing. Returns (values per member, partitions per member)."""
    values = [[] for _ in range(members)]
    assigned = [set() for _ in range(members)]

    def run(n):
        consumer = group_consumer(address, group)
        consumer.subscribe([topic], on_assign=lambda c, parts: assigned[n].update(p.partition for p in parts))
        deadline = time.time() + seconds
        while time.time() < deadline and sum(len(v) for v in values) < expected:
            batch = consumer.consume(500, 0.5)
            for m in batch:
                assert m.error() is None, m.error()
                values[n].append(m.value())
            if batch:
                consumer.commit(asynchronous=False)
        consumer.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return values, assigned


def test_three_members_split_six_partitions_and_consume_everything_once(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "orders", MESSAGES)
    values, assigned = consume_in_group(broker.address, "orders", "billing", 3, MESSAGES)
    assert sorted(len(a) for a in assigned) == [2, 2, 2], assigned
    assert set().union(*assigned) == set(range(PARTITIONS))
    everything = [v for member in values for v in member]
    assert len(everything) == MESSAGES and len(set(everything)) == MESSAGES, "each message exactly once"

    # The committed offsets are the ends of the partitions.
    checker = group_consumer(broker.address, "billing")
    committed = checker.committed([TopicPartition("orders", p) for p in range(PARTITIONS)], timeout=10)
    ends = [checker.get_watermark_offsets(TopicPartition("orders", p), timeout=10)[1] for p in range(PARTITIONS)]
    checker.close()
    assert [c.offset for c in committed] == ends


def test_committed_offsets_survive_sigkill_and_sigterm_restarts(start_broker, tmp_path):
    data_dir = tmp_path / "group-data"
    broker = start_broker(*GROUP_FLAGS, data_dir=data_dir)
    produce(broker.address, "events", 3000)
    first, _ = consume_in_group(broker.address, "events", "audit", 1, 3000)
    assert len(first[0]) == 3000
    for sig in (signal.SIGKILL, signal.SIGTERM):
        assert broker.stop(sig) is not None
        broker.process = None
        broker.start()
        produce(broker.address, "events", 1000, start=3000 if sig == signal.SIGKILL else 4000)
        resumed, _ = consume_in_group(broker.address, "events", "audit", 1, 1000)
        # Only what came after the commit: the group resumes where it left off.
        assert len(resumed[0]) == 1000, f"after {sig!r}: {len(resumed[0])} messages"
        start = 3000 if sig == signal.SIGKILL else 4000
        assert sorted(resumed[0]) == sorted(b"v%d" % i for i in range(start, start + 1000))


def test_kafka_python_group_consumer_joins_consumes_commits_and_leaves(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "kp-group", 500)
    consumer = KafkaConsumer("kp-group", bootstrap_servers=broker.address, group_id="kp",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == 500:
            break
    consumer.commit()
    assert sorted(got) == sorted(b"v%d" % i for i in range(500))
    assert len(consumer.assignment()) == PARTITIONS
    consumer.close()  # sends LeaveGroup
    checker = KafkaConsumer(bootstrap_servers=broker.address, group_id="kp", enable_auto_commit=False)
    total = sum(checker.committed(KpTopicPartition("kp-group", p)) or 0 for p in range(PARTITIONS))
    checker.close()
    assert total == 500

