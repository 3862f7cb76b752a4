"""confluent-kafka (librdkafka from PyPI): idempotent acks=all producers with every
compression codec, a full read-back with order, keys, headers and timestamps checked, and
offsets_for_times."""
from collections import defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 25_000  # 100 000 messages in all
BASE_TS = 1_700_000_000_000


def test_idempotent_compressed_produce_and_full_read_back(broker):
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic("ck", 6, 1)]).values():
        future.result(30)
    sent = defaultdict(list)  # partition -> [(offset, key, value, headers, ts)]
    for codec in CODECS:
        errors = []

        def delivered(error, message):
            if error:
                errors.append(error)
            else:
                # Delivery reports carry no headers: rebuild the ones sent from the key.
                codec_name, i = message.key().decode().rsplit("-", 1)
                headers = [("codec", codec_name.encode()), ("i", i.encode())]
                sent[message.partition()].append(
                    (message.offset(), message.key(), message.value(), headers, message.timestamp()[1]))

        producer = Producer({"bootstrap.servers": broker.address, "acks": "all", "enable.idempotence": True,
                             "compression.type": codec, "linger.ms": 5})
        for i in range(PER_CODEC):
            n = CODECS.index(codec) * PER_CODEC + i
            producer.produce("ck", key=f"{codec}-{i}".encode(), value=f"value-{n}".encode() * 3,
                             headers=[("codec", codec.encode()), ("i", str(i).encode())], timestamp=BASE_TS + n,
                             on_delivery=delivered)
            if i % 1000 == 0:
                producer.poll(0)
        assert producer.flush(60) == 0
        assert not errors, errors[:3]
    assert sum(len(v) for v in sent.values()) == len(CODECS) * PER_CODEC
    assert len(sent) == 6, "the default partitioner spreads keys over all partitions"

    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "ck-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition("ck", p, 0) for p in range(6)])
    received = defaultdict(list)
    total = len(CODECS) * PER_CODEC
    count = 0
    for _ in range(600):
        for m in consumer.consume(2000, 0.5):
            assert m.error() is None, m.error()
            received[m.partition()].append((m.offset(), m.key(), m.value(), m.headers(), m.timestamp()[1]))
            count += 1
        if count >= total:
            break
    for partition, messages in sent.items():
        assert received[partition] == sorted(messages), f"partition {partition} differs"
        offsets = [m[0] for m in received[partition]]
        assert offsets == list(range(len(offsets))), "offsets are dense from 0"

    # offsets_for_times: the first offset whose timestamp is >= the asked time.
    for target in [BASE_TS, BASE_TS + 12_345, BASE_TS + 99_999, BASE_TS + 10**9]:
        answers = consumer.offsets_for_times([TopicPartition("ck", p, target) for p in range(6)], 30)
        for answer in answers:
            later = [m[0] for m in received[answer.partition] if m[4] >= target]
            expected = later[0] if later else -1
            if expected == -1:
                assert answer.offset in (-1, len(received[answer.partition])), answer
            else:
                assert answer.offset == expected, (target, answer)
    consumer.close()
