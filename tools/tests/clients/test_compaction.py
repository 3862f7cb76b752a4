"""Log compaction through the broker: a compacted topic keeps each key's newest record at
its original offset, and its disk usage drops."""
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

RECORDS = 100_000
KEYS = 1_000


def log_bytes(data_dir, topic):
    return sum(f.stat().st_size for f in Path(data_dir).glob(f"{topic}-*/*.log"))


def test_compacted_topic_keeps_the_newest_record_per_key_and_shrinks(start_broker, tmp_path):
    data_dir = tmp_path / "compact-data"
    broker = start_broker("--cores", "2", data_dir=data_dir)
    admin = AdminClient({"bootstrap.servers": broker.address})
    configs = {"cleanup.policy": "compact", "segment.bytes": str(256 * 1024)}
    for future in admin.create_topics([NewTopic("latest", 1, 1, config=configs)]).values():
        future.result(30)
    newest = {}  # key -> (offset, value)

    def delivered(error, message):
        assert error is None, error
        newest[message.key()] = (message.offset(), message.value())

    producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 5, "acks": "all"})
    for i in range(RECORDS):
        producer.produce("latest", key=b"key-%d" % (i % KEYS), value=b"value-%d-" % i + b"x" * 100,
                         on_delivery=delivered)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    assert len(newest) == KEYS
    before = log_bytes(data_dir, "latest")

    # The broker compacts every 15 s; wait for it (bounded).
    deadline = time.time() + 60
    while log_bytes(data_dir, "latest") > before // 4 and time.time() < deadline:
        time.sleep(1)
    after = log_bytes(data_dir, "latest")
    print(f"compaction: {before} bytes of .log before, {after} after")
    assert after <= before // 4, f"{before} bytes before, {after} after"

    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "compaction-check",
                         "enable.auto.commit": False, "check.crcs": True})
    consumer.assign([TopicPartition("latest", 0, 0)])
    end = consumer.get_watermark_offsets(TopicPartition("latest", 0), timeout=10)[1]
    assert end == RECORDS, "compaction keeps offsets: the log end does not move"
    seen = {}
    last_offset = -1
    deadline = time.time() + 60
    while last_offset < end - 1 and time.time() < deadline:
        for m in consumer.consume(5000, 0.5):
            assert m.error() is None, m.error()
            assert m.offset() > last_offset, "offsets only grow"
            last_offset = m.offset()
            seen[m.key()] = (m.offset(), m.value())
    consumer.close()
    assert seen == newest, "each key's newest record survives at its original offset"
