"""Durability: SIGKILL the broker at random moments while confluent-kafka produces with
acks=all; after each restart every acknowledged message is at its acknowledged offset,
offsets have no gaps, and every batch served passes the client's CRC check. Then a clean
SIGTERM restart keeps everything too."""
import random
import signal
import threading
import time
from collections import defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

KILLS = 10
PARTITIONS = 3


def produce_until(broker_address, stop, acked, counter):
    producer = Producer({"bootstrap.servers": broker_address, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 2, "message.timeout.ms": 20000, "reconnect.backoff.ms": 20,
                         "reconnect.backoff.max.ms": 200})

    def delivered(error, message):
        if error is None:
            acked[message.partition()][message.offset()] = message.value()

    while not stop.is_set():
        n = counter[0]
        counter[0] += 1
        try:
            producer.produce("durable", key=b"%d" % n, value=b"message-%08d" % n + b"." * 200, on_delivery=delivered)
        except BufferError:
            producer.poll(0.05)
            continue
        if n % 200 == 0:
            producer.poll(0)
            time.sleep(0.001)
    return producer


def read_everything(address):
    consumer = Consumer({"bootstrap.servers": address, "group.id": "durability-check", "enable.auto.commit": False,
                         "check.crcs": True})
    consumer.assign([TopicPartition("durable", p, 0) for p in range(PARTITIONS)])
    stored = defaultdict(dict)
    ends = {}
    for p in range(PARTITIONS):
        ends[p] = consumer.get_watermark_offsets(TopicPartition("durable", p), timeout=10)[1]
    deadline = time.time() + 120
    while any(len(stored[p]) < ends[p] for p in range(PARTITIONS)) and time.time() < deadline:
        for m in consumer.consume(5000, 0.5):
            assert m.error() is None, m.error()
            assert m.offset() not in stored[m.partition()], "an offset is served twice"
            stored[m.partition()][m.offset()] = m.value()
    consumer.close()
    return stored, ends


def test_acknowledged_messages_survive_sigkill_and_sigterm(start_broker, tmp_path):
    data_dir = tmp_path / "durable-data"
    broker = start_broker("--cores", "2", data_dir=data_dir)
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic("durable", PARTITIONS, 1)]).values():
        future.result(30)
    acked = defaultdict(dict)
    counter = [0]
    rng = random.Random(20261124)
    for kill in range(KILLS):
        stop = threading.Event()
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault("p", produce_until(broker.address, stop, acked, counter)))
        worker.start()
        time.sleep(rng.uniform(0.3, 1.5))
        broker.stop(signal.SIGKILL)
        stop.set()
        worker.join()
        # Restart on the same port and data; the producer retries what was not acknowledged.
        broker.process = None
        broker.start()
        assert result["p"].flush(30) == 0
    assert broker.log().count("previous_shutdown=Unclean") == KILLS, "every restart after a kill is seen as unclean"
    total_acked = sum(len(v) for v in acked.values())
    assert total_acked > 1000, f"only {total_acked} messages were acknowledged"

    assert broker.stop(signal.SIGTERM) == 0, broker.log()
    assert "clean shutdown" in broker.log()
    broker.process = None
    broker.start()
    assert broker.log().count("previous_shutdown=Clean") == 1
    stored, ends = read_everything(broker.address)
    for p in range(PARTITIONS):
        assert sorted(stored[p]) == list(range(ends[p])), f"partition {p}: offsets must be dense from 0"
        for offset, value in acked[p].items():
            assert stored[p].get(offset) == value, f"acknowledged message lost or moved: partition {p} offset {offset}"
