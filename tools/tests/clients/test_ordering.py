"""Per-partition order under pipelining (issue 11): one librdkafka producer with several
requests in flight sends mixed 10 KB / 100 KB / 1 MB values to one partition; every
message must land at the offset of its send order. Run on 1 and 2 cores (so the
producer's connection and the partition's shard may differ) and with the every-append and
bytes flush policies (fsyncs overlapping appends, or not).

Before the fix, the log's append permit let a newly arrived append take the permit ahead
of one already woken for it, so a large request and the next one swapped places."""
import random
import struct

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROUNDS = 5
KB = 1000
# Per round: a run of each size, then the sizes shuffled together.
RUN = [(10 * KB, 120), (100 * KB, 60), (1000 * KB, 6)]
MIXED = 60


def round_sizes(rng):
    sizes = [size for size, count in RUN for _ in range(count)]
    mixed = [rng.choice([10 * KB, 100 * KB, 1000 * KB]) for _ in range(MIXED)]
    return sizes + mixed


def value_for(sequence, size):
    return struct.pack(">Q", sequence) + bytes([sequence % 251]) * (size - 8)


def produce_in_order(address, topic, sizes):
    """Sends every value in order on one producer; returns the delivery reports."""
    reports = {}
    errors = []

    def delivered(error, message):
        if error:
            errors.append(error)
        else:
            reports[struct.unpack(">Q", message.value()[:8])[0]] = message.offset()

    producer = Producer({
        "bootstrap.servers": address, "acks": "all", "linger.ms": 5,
        # Several requests in flight on the one connection, no retries to blur the picture.
        "max.in.flight.requests.per.connection": 5, "enable.idempotence": False, "retries": 0,
        "message.max.bytes": 1_100_000, "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 256 * 1024,
    })
    for sequence, size in enumerate(sizes):
        while True:
            try:
                producer.produce(topic, value=value_for(sequence, size), partition=0, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not errors, errors[:3]
    return reports


def read_back(address, topic, count):
    consumer = Consumer({"bootstrap.servers": address, "group.id": f"{topic}-check",
                         "enable.auto.commit": False, "fetch.max.bytes": 64 << 20})
    consumer.assign([TopicPartition(topic, 0, 0)])
    stored = []
    for _ in range(600):
        for message in consumer.consume(500, 0.5):
            assert message.error() is None, message.error()
            stored.append((message.offset(), struct.unpack(">Q", message.value()[:8])[0], len(message.value())))
        if len(stored) >= count:
            break
    consumer.close()
    return stored


@pytest.mark.parametrize("cores", [1, 2])
@pytest.mark.parametrize("flush", ["every-append", "bytes:1048576"])
def test_one_producer_keeps_send_order_on_one_partition(start_broker, cores, flush):
    broker = start_broker("--cores", str(cores), "--flush", flush)
    topic = "order"
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    rng = random.Random(11)
    sizes = [size for _ in range(ROUNDS) for size in round_sizes(rng)]
    reports = produce_in_order(broker.address, topic, sizes)
    misplaced_reports = [(seq, offset) for seq, offset in sorted(reports.items()) if seq != offset]
    stored = read_back(broker.address, topic, len(sizes))
    assert len(stored) == len(sizes), f"{len(stored)} of {len(sizes)} messages read back"
    misplaced = [(offset, seq) for offset, seq, _ in stored if offset != seq]
    assert not misplaced, f"{len(misplaced)} messages out of send order, e.g. (offset, sent as) {misplaced[:5]}"
    assert not misplaced_reports, f"delivery reports out of order: {misplaced_reports[:5]}"
    assert [size for _, _, size in stored] == sizes, "each message kept its size"
