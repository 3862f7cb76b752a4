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

ROUNDS = 8
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


def produce_in_order(address, topic, sizes, partitions=1, **config):
    """Sends every value in order on one producer, message `sequence` to partition
    `sequence % partitions`; returns the delivery reports as {sequence: (partition, offset)}."""
    reports = {}
    errors = []

    def delivered(error, message):
        if error:
            errors.append(error)
        else:
            reports[struct.unpack(">Q", message.value()[:8])[0]] = (message.partition(), message.offset())

    producer = Producer({
        "bootstrap.servers": address, "acks": "all", "linger.ms": 5,
        # Several requests in flight on the one connection, no retries to blur the picture.
        "max.in.flight.requests.per.connection": 5, "enable.idempotence": False, "retries": 0,
        "message.max.bytes": 1_100_000, "batch.size": 1_000_000,
        "queue.buffering.max.kbytes": 256 * 1024, **config,
    })
    for sequence, size in enumerate(sizes):
        while True:
            try:
                producer.produce(topic, value=value_for(sequence, size), partition=sequence % partitions,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not errors, errors[:3]
    return reports


def read_back(address, topic, count, partition=0):
    """Reads `count` messages of one partition as (offset, sequence, size)."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": f"{topic}-check",
                         "enable.auto.commit": False, "fetch.max.bytes": 64 << 20})
    consumer.assign([TopicPartition(topic, partition, 0)])
    stored = []
    for _ in range(600):
        for message in consumer.consume(1000, 0.5):
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
    misplaced_reports = [(seq, offset) for seq, (_, offset) in sorted(reports.items()) if seq != offset]
    stored = read_back(broker.address, topic, len(sizes))
    assert len(stored) == len(sizes), f"{len(stored)} of {len(sizes)} messages read back"
    misplaced = [(offset, seq) for offset, seq, _ in stored if offset != seq]
    assert not misplaced, f"{len(misplaced)} messages out of send order, e.g. (offset, sent as) {misplaced[:5]}"
    assert not misplaced_reports, f"delivery reports out of order: {misplaced_reports[:5]}"
    assert [size for _, _, size in stored] == sizes, "each message kept its size"


IDEMPOTENT_MESSAGES = 200_000


def test_idempotent_producer_never_sees_out_of_order_sequence(start_broker):
    """librdkafka's idempotent producer with 5 requests in flight (its default) on a
    2-shard broker, one partition per shard so one of them is remote to the connection:
    200 000 values of 100 B to 100 KB, every one stored once, in send order, and the broker
    never answered OUT_OF_ORDER_SEQUENCE_NUMBER (it logs every such refusal as a warning)."""
    broker = start_broker("--cores", "2")
    topic = "idempotent-order"
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    rng = random.Random(5)
    sizes = rng.choices([100, 1000, 10 * KB, 100 * KB], weights=[60, 30, 9.5, 0.5], k=IDEMPOTENT_MESSAGES)
    reports = produce_in_order(broker.address, topic, sizes, partitions=2, **{
        "enable.idempotence": True, "max.in.flight.requests.per.connection": 5, "retries": 2_147_483_647})
    assert len(reports) == IDEMPOTENT_MESSAGES
    for partition in (0, 1):
        sent = [seq for seq in range(partition, IDEMPOTENT_MESSAGES, 2)]
        stored = read_back(broker.address, topic, len(sent), partition)
        stored_sequences = [seq for _, seq, _ in stored]
        assert len(set(stored_sequences)) == len(stored_sequences), f"partition {partition} holds duplicates"
        assert stored_sequences == sent, f"partition {partition}: {len(stored)} of {len(sent)} stored, or out of order"
        assert [offset for offset, _, _ in stored] == list(range(len(sent)))
    log = broker.log()
    assert "OutOfOrderSequence" not in log, [line for line in log.splitlines() if "OutOfOrderSequence" in line][:3]
    assert "out of its source's order" not in log, "the broker's own order check fired"
