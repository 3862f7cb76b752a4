"""Cross-core routing: with two shards, a topic's partitions sit on both and clients'
connections land on both (SO_REUSEPORT); requests reaching a shard that does not own the
partition are routed to the owner and answered correctly."""
import re
import signal

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CONNECTIONS = 16
PARTITIONS = 4
PER_PRODUCER = 500


def test_requests_on_the_non_owner_shard_are_routed_and_answered(start_broker):
    broker = start_broker("--cores", "2")
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic("spread", PARTITIONS, 1)]).values():
        future.result(30)
    producers = [Producer({"bootstrap.servers": broker.address, "acks": "all", "linger.ms": 1})
                 for _ in range(CONNECTIONS)]
    for n, producer in enumerate(producers):
        for i in range(PER_PRODUCER):
            producer.produce("spread", value=b"%d-%d" % (n, i), partition=i % PARTITIONS)
    for producer in producers:
        assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "spread-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition("spread", p, 0) for p in range(PARTITIONS)])
    values = []
    for _ in range(200):
        for m in consumer.consume(1000, 0.2):
            assert m.error() is None
            assert m.value().split(b"-")[1] and int(m.value().split(b"-")[1]) % PARTITIONS == m.partition()
            values.append(m.value())
        if len(values) >= CONNECTIONS * PER_PRODUCER:
            break
    consumer.close()
    assert sorted(values) == sorted(b"%d-%d" % (n, i) for n in range(CONNECTIONS) for i in range(PER_PRODUCER))

    assert broker.stop(signal.SIGTERM) == 0
    stats = {}
    for line in broker.log().splitlines():
        if "shard stopping" in line:
            fields = dict(re.findall(r"(\w+)=(\d+)", line))
            stats[int(fields["shard"])] = {k: int(v) for k, v in fields.items()}
    assert sorted(stats) == [0, 1], broker.log()
    for shard, counters in stats.items():
        assert counters["connections"] > 0, f"shard {shard} got no connection: {stats}"
        assert counters["calls_routed_out"] > 0, f"shard {shard} routed nothing: {stats}"
        assert counters["calls_served_for_others"] > 0, f"shard {shard} served nothing for the other: {stats}"
