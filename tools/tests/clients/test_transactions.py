"""Transactions (issue 13) with real clients against a real broker: aborted data hidden
from read_committed consumers, fencing of an older producer instance, timeouts that free
the last stable offset, consume-transform-produce exactly once through SIGKILLs of the
instances and of the broker, and the refusals Kafka gives to bad transactional requests."""
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from prometheus_client.parser import text_string_to_metric_families

from kafka.record.default_records import DefaultRecordBatchBuilder

from conftest import SLUICE, Broker, free_port
from test_admin import Admin, partitions_of
from test_bad_input import UNKNOWN_TOPIC_OR_PARTITION, closed_by_broker, connect, frame, kafka_string, read_response

HERE = Path(__file__).resolve().parent


def create(address, *topics):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(name, partitions) for name, partitions in topics]).values():
        future.result(30)


def read_all(address, topic, isolation, expected, seconds=30, group=None):
    """Values of `topic` as a consumer with this isolation level sees them, per partition in
    order, until `expected` arrived and nothing more came for a second, or time ran out."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": group or f"reader-{isolation}-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": isolation})
    consumer.subscribe([topic])
    values, deadline, quiet_since = [], time.time() + seconds, None
    while time.time() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            if len(values) >= expected:
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since > 1:
                    break
            continue
        assert not message.error(), message.error()
        quiet_since = None
        values.append((message.partition(), message.value().decode()))
    consumer.close()
    return values


def test_read_committed_sees_only_committed_transactions_and_read_uncommitted_sees_all(broker):
    create(broker.address, ("payments", 3))
    producer = Producer({"bootstrap.servers": broker.address, "transactional.id": "aborter"})
    producer.init_transactions(30)
    committed, everything = [], []
    for transaction in range(12):
        producer.begin_transaction()
        values = [f"{transaction}-{i}" for i in range(10)]
        for i, value in enumerate(values):
            producer.produce("payments", key=str(i), value=value)
        everything += values
        if transaction % 3 == 2:
            producer.flush(30)  # sent, so that read_uncommitted consumers see it
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
            committed += values
    seen_committed = read_all(broker.address, "payments", "read_committed", len(committed))
    seen_everything = read_all(broker.address, "payments", "read_uncommitted", len(everything))
    assert sorted(v for _, v in seen_committed) == sorted(committed)
    assert sorted(v for _, v in seen_everything) == sorted(everything)
    for seen in (seen_committed, seen_everything):
        for partition in range(3):
            order = [tuple(map(int, v.split("-"))) for p, v in seen if p == partition]
            assert order == sorted(order), f"partition {partition} out of order"


def test_a_new_instance_fences_the_old_one_and_aborts_its_transaction(broker):
    create(broker.address, ("fenced", 1))
    older = Producer({"bootstrap.servers": broker.address, "transactional.id": "shared-id", "log_level": 0})
    older.init_transactions(30)
    older.begin_transaction()
    older.produce("fenced", value="from the older instance")
    older.flush(30)
    newer = Producer({"bootstrap.servers": broker.address, "transactional.id": "shared-id"})
    newer.init_transactions(30)  # aborts the older instance's open transaction first
    with pytest.raises(KafkaException) as raised:
        older.produce("fenced", value="after the fence")
        older.commit_transaction(30)
    assert raised.value.args[0].fatal()
    assert raised.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                           KafkaError.INVALID_PRODUCER_EPOCH)
    newer.begin_transaction()
    newer.produce("fenced", value="from the newer instance")
    newer.commit_transaction(30)
    assert [v for _, v in read_all(broker.address, "fenced", "read_committed", 1)] == ["from the newer instance"]
    uncommitted = [v for _, v in read_all(broker.address, "fenced", "read_uncommitted", 2)]
    assert uncommitted == ["from the older instance", "from the newer instance"]


def last_stable_offset(address, topic, partition=0):
    consumer = Consumer({"bootstrap.servers": address, "group.id": "lso-probe", "isolation.level": "read_committed"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)[1]
    finally:
        consumer.close()


def test_a_vanished_producers_transaction_times_out_and_frees_the_last_stable_offset(broker):
    create(broker.address, ("stalled", 1))
    script = (
        "import sys, time\n"
        "from confluent_kafka import Producer\n"
        f"p = Producer({{'bootstrap.servers': '{broker.address}', 'transactional.id': 'vanishing',"
        " 'transaction.timeout.ms': 3000})\n"
        "p.init_transactions(30); p.begin_transaction()\n"
        "p.produce('stalled', value='never committed'); p.flush(30)\n"
        "print('open', flush=True); time.sleep(600)\n")
    vanishing = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert vanishing.stdout.readline().strip() == "open"
        vanishing.send_signal(signal.SIGKILL)
    finally:
        vanishing.kill()
        vanishing.wait()
    # The open transaction holds the last stable offset at its first record.
    assert last_stable_offset(broker.address, "stalled") == 0
    other = Producer({"bootstrap.servers": broker.address, "transactional.id": "steady"})
    other.init_transactions(30)
    other.begin_transaction()
    other.produce("stalled", value="committed later")
    other.commit_transaction(30)
    started = time.time()
    while last_stable_offset(broker.address, "stalled") == 0:
        assert time.time() - started < 30, "the timed-out transaction was never aborted"
        time.sleep(0.2)
    assert [v for _, v in read_all(broker.address, "stalled", "read_committed", 1)] == ["committed later"]


def test_offsets_sent_to_a_transaction_are_visible_only_once_it_commits(broker):
    create(broker.address, ("in", 1), ("out", 1))
    feeder = Producer({"bootstrap.servers": broker.address})
    for i in range(10):
        feeder.produce("in", value=str(i))
    feeder.flush(30)
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "ctp", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.assign([TopicPartition("in", 0)])
    records = []
    while len(records) < 10:
        records += [m for m in consumer.consume(10, 1) if not m.error()]
    producer = Producer({"bootstrap.servers": broker.address, "transactional.id": "ctp-offsets"})
    producer.init_transactions(30)
    observer = Consumer({"bootstrap.servers": broker.address, "group.id": "ctp", "enable.auto.commit": False})

    def committed():
        return observer.committed([TopicPartition("in", 0)], 10)[0].offset

    # Aborted: the offset stays where it was.
    producer.begin_transaction()
    producer.send_offsets_to_transaction([TopicPartition("in", 0, 4)], consumer.consumer_group_metadata(), 30)
    producer.abort_transaction(30)
    assert committed() < 0
    producer.begin_transaction()
    producer.produce("out", value="x")
    producer.send_offsets_to_transaction([TopicPartition("in", 0, 10)], consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    started = time.time()
    while committed() != 10:  # markers follow EndTxn's answer
        assert time.time() - started < 10
        time.sleep(0.1)
    consumer.close()
    observer.close()


def test_open_transactions_and_their_age_are_reported_per_partition(start_broker):
    """What operators chase when the last stable offset stalls: the admin socket's
    partitions, /metrics and `sluice transactions` name the open transaction and its age."""
    broker = start_broker("--cores", "2", "--metrics-listen", f"127.0.0.1:{free_port()}")
    metrics_address = broker.flags[broker.flags.index("--metrics-listen") + 1]
    create(broker.address, ("watched", 2))
    producer = Producer({"bootstrap.servers": broker.address, "transactional.id": "watched-writer"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("watched", value="held open", partition=1)
    producer.flush(30)
    time.sleep(1.2)

    def watched():
        return partitions_of(Admin(broker)(command="partitions"), topic="watched")

    def samples():
        text = scrape_metrics(metrics_address)
        return {(s.name, s.labels.get("topic"), s.labels.get("partition")): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    open_now = watched()
    assert (open_now[1]["open_transactions"], open_now[1]["last_stable_offset"]) == (1, 0)
    assert open_now[1]["oldest_open_transaction_age_ms"] >= 1000
    assert open_now[0]["open_transactions"] == 0 and "oldest_open_transaction_age_ms" not in open_now[0]
    scraped = samples()
    assert scraped[("sluice_partition_open_transactions", "watched", "1")] == 1
    assert scraped[("sluice_partition_oldest_open_transaction_age_seconds", "watched", "1")] >= 1.0
    assert ("sluice_partition_oldest_open_transaction_age_seconds", "watched", "0") not in scraped
    listed = subprocess.run([str(SLUICE), "transactions", "--brokers", broker.address, "describe", "watched-writer"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    assert (row[0], row[3], row[-1]) == ("watched-writer", "Ongoing", "watched-1")
    producer.commit_transaction(30)
    deadline = time.time() + 10
    while watched()[1]["open_transactions"] != 0:  # the marker follows EndTxn's answer
        assert time.time() < deadline
        time.sleep(0.05)
    assert watched()[1]["last_stable_offset"] == 2, "the record and its commit marker"
    assert samples()[("sluice_partition_open_transactions", "watched", "1")] == 0
    listed = subprocess.run([str(SLUICE), "transactions", "--brokers", broker.address, "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0::3] for line in listed.stdout.splitlines()[1:]] == [["watched-writer", "CompleteCommit"]]


def scrape_metrics(address):
    return subprocess.run(["curl", "-s", f"http://{address}/metrics"], capture_output=True, text=True,
                          timeout=30).stdout


def call(sock, api_key, version, body, correlation_id=[0]):
    """One raw request; the response body after its correlation id."""
    correlation_id[0] += 1
    sock.sendall(frame(api_key, version, correlation_id[0], body))
    response = read_response(sock)
    assert struct.unpack(">i", response[:4])[0] == correlation_id[0]
    return response[4:]


INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, END_TXN = 22, 24, 26
INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING, INVALID_TRANSACTION_TIMEOUT = 48, 49, 50
CONCURRENT_TRANSACTIONS, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED = 51, 47, 90
OUT_OF_ORDER_SEQUENCE = 45


def init_producer_id(sock, transactional_id, timeout_ms):
    body = call(sock, INIT_PRODUCER_ID, 0, kafka_string(transactional_id) + struct.pack(">i", timeout_ms))
    _throttle, error, producer_id, epoch = struct.unpack(">ihqh", body)
    return error, producer_id, epoch


def end_txn(sock, transactional_id, producer_id, epoch, commit, version=0):
    """EndTxn v0-2 (the same non-flexible layout)."""
    body = kafka_string(transactional_id) + struct.pack(">qh?", producer_id, epoch, commit)
    return struct.unpack(">ih", call(sock, END_TXN, version, body))[1]


def add_partitions(sock, transactional_id, producer_id, epoch, topic, partition):
    body = (kafka_string(transactional_id) + struct.pack(">qh", producer_id, epoch) + struct.pack(">i", 1)
            + kafka_string(topic) + struct.pack(">ii", 1, partition))
    response = call(sock, ADD_PARTITIONS_TO_TXN, 0, body)
    name_length = struct.unpack(">h", response[8:10])[0]
    return struct.unpack(">ih", response[10 + name_length + 4:10 + name_length + 10])[1]


def test_bad_transactional_requests_get_kafkas_errors_and_change_nothing(broker):
    create(broker.address, ("strict", 1))
    with connect(broker) as sock:
        for timeout_ms in (0, -1, 900_001):
            assert init_producer_id(sock, "strict", timeout_ms)[0] == INVALID_TRANSACTION_TIMEOUT
        error, producer_id, epoch = init_producer_id(sock, "strict", 60_000)
        assert (error, epoch) == (0, 0) and producer_id >= 0
        assert end_txn(sock, "unknown-id", producer_id, epoch, True) == INVALID_PRODUCER_ID_MAPPING
        for commit in (True, False):  # no transaction is open
            assert end_txn(sock, "strict", producer_id, epoch, commit) == INVALID_TXN_STATE
        assert add_partitions(sock, "strict", producer_id, epoch, "no-such-topic", 0) == UNKNOWN_TOPIC_OR_PARTITION
        assert add_partitions(sock, "strict", producer_id + 1, epoch, "strict", 0) == INVALID_PRODUCER_ID_MAPPING
        # v0 clients know fencing as INVALID_PRODUCER_EPOCH (PRODUCER_FENCED came in v2).
        assert add_partitions(sock, "strict", producer_id, epoch + 1, "strict", 0) == INVALID_PRODUCER_EPOCH
        # None of that opened a transaction.
        assert end_txn(sock, "strict", producer_id, epoch, True) == INVALID_TXN_STATE
        assert add_partitions(sock, "strict", producer_id, epoch, "strict", 0) == 0
        assert end_txn(sock, "strict", producer_id, epoch - 1, False) == INVALID_PRODUCER_EPOCH
        assert end_txn(sock, "strict", producer_id, epoch - 1, False, version=2) == PRODUCER_FENCED
        assert end_txn(sock, "strict", producer_id, epoch, False) == 0
        # A retry meets CONCURRENT_TRANSACTIONS while the markers are written, then succeeds.
        deadline = time.time() + 10
        while (retried := end_txn(sock, "strict", producer_id, epoch, False)) == CONCURRENT_TRANSACTIONS:
            assert time.time() < deadline
            time.sleep(0.05)
        assert retried == 0
        assert end_txn(sock, "strict", producer_id, epoch, True) == INVALID_TXN_STATE, "aborted, not committed"
    # Malformed bodies close only their connection (an absurd array count: the decoder
    # abort DESIGN.md §5 guards against; a body cut short).
    for api_key, body in [(ADD_PARTITIONS_TO_TXN, kafka_string("strict") + struct.pack(">qh", 1, 0) + b"\x7f\xff\xff\xff"),
                          (END_TXN, kafka_string("strict") + b"\x00\x00"),
                          (INIT_PRODUCER_ID, b"\x00")]:
        with connect(broker) as sock:
            sock.sendall(frame(api_key, 0, 99, body))
            assert closed_by_broker(sock), api_key
    # The broker serves clients as before.
    producer = Producer({"bootstrap.servers": broker.address, "transactional.id": "after-bad-input"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("strict", value="fine")
    producer.commit_transaction(30)
    assert [v for _, v in read_all(broker.address, "strict", "read_committed", 1)] == ["fine"]


def test_idle_transactional_ids_expire_and_the_timeout_bound_is_a_setting(start_broker):
    broker = start_broker("--cores", "2", "--transactional-id-expiration-ms", "1500",
                          "--transaction-max-timeout-ms", "5000")
    create(broker.address, ("expiring", 1))

    def describe(transactional_id):
        return subprocess.run([str(SLUICE), "transactions", "--brokers", broker.address, "describe", transactional_id],
                              capture_output=True, text=True, timeout=60)

    with connect(broker) as sock:
        assert init_producer_id(sock, "idle", 5001)[0] == INVALID_TRANSACTION_TIMEOUT
        error, first_id, epoch = init_producer_id(sock, "idle", 5000)
        assert error == 0
        assert add_partitions(sock, "idle", first_id, epoch, "expiring", 0) == 0
        assert end_txn(sock, "idle", first_id, epoch, True) == 0
        # An id with a transaction open does not expire (its 5 s timeout has not passed).
        error, open_id, open_epoch = init_producer_id(sock, "kept-open", 5000)
        assert add_partitions(sock, "kept-open", open_id, open_epoch, "expiring", 0) == 0
    deadline = time.time() + 20
    while describe("idle").returncode == 0:
        assert time.time() < deadline, "the idle transactional id never expired"
        time.sleep(0.2)
    assert "TransactionalIdNotFound" in describe("idle").stderr
    kept = describe("kept-open")
    assert kept.returncode == 0 and "Ongoing" in kept.stdout, kept.stdout + kept.stderr
    # Its tombstone keeps it forgotten across a restart.
    broker.stop()
    broker.start()
    assert "TransactionalIdNotFound" in describe("idle").stderr
    with connect(broker) as sock:
        error, second_id, second_epoch = init_producer_id(sock, "idle", 5000)
    assert (error, second_epoch) == (0, 0) and second_id != first_id, "a forgotten id starts afresh"


def fetch_v4_aborted(sock, topic, isolation_level):
    """Fetch v4 of partition 0 from offset 0: the `aborted_transactions` field, None when null."""
    body = struct.pack(">iiiib", -1, 0, 1, 1 << 20, isolation_level) + struct.pack(">i", 1) + kafka_string(topic)
    body += struct.pack(">iiqi", 1, 0, 0, 1 << 20)
    response = call(sock, 1, 4, body)
    at = 4 + 4 + 2 + len(topic.encode()) + 4  # throttle, topic count, name, partition count
    _partition, error, _hw, _lso, count = struct.unpack(">ihqqi", response[at:at + 26])
    assert error == 0
    if count < 0:
        return None
    return [struct.unpack(">qq", response[at + 26 + 16 * i:at + 42 + 16 * i]) for i in range(count)]


def test_aborted_transactions_are_listed_for_read_committed_fetches_only(broker):
    create(broker.address, ("listed", 1))
    with connect(broker) as sock:
        _, producer_id, epoch = init_producer_id(sock, "lister", 60_000)
        assert add_partitions(sock, "lister", producer_id, epoch, "listed", 0) == 0
        assert produce_transactional(sock, "lister", "listed", producer_id, epoch, 0) == (0, 0)
        assert end_txn(sock, "lister", producer_id, epoch, False) == 0
        deadline = time.time() + 10
        while not fetch_v4_aborted(sock, "listed", 1):  # the abort marker follows EndTxn's answer
            assert time.time() < deadline
            time.sleep(0.05)
        assert fetch_v4_aborted(sock, "listed", 1) == [(producer_id, 0)]
        assert fetch_v4_aborted(sock, "listed", 0) is None, "null for read_uncommitted, as Kafka"


def produce_transactional(sock, transactional_id, topic, producer_id, epoch, sequence):
    """Produce v3 of one transactional record; returns (error code, base offset)."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True, producer_id=producer_id,
                                        producer_epoch=epoch, base_sequence=sequence, batch_size=1 << 20)
    builder.append(0, int(time.time() * 1000), b"k", b"v", [])
    records = bytes(builder.build())
    body = kafka_string(transactional_id) + struct.pack(">hi", -1, 5000) + struct.pack(">i", 1) + kafka_string(topic)
    body += struct.pack(">iii", 1, 0, len(records)) + records
    response = call(sock, 0, 3, body)
    at = 4 + 2 + len(topic.encode()) + 4
    _index, error, base_offset = struct.unpack(">ihq", response[at:at + 14])
    return error, base_offset


def test_out_of_order_transactional_sequences_are_refused_and_write_nothing(broker):
    create(broker.address, ("sequenced", 1))
    with connect(broker) as sock:
        _, producer_id, epoch = init_producer_id(sock, "sequenced", 60_000)
        assert add_partitions(sock, "sequenced", producer_id, epoch, "sequenced", 0) == 0
        assert produce_transactional(sock, "sequenced", "sequenced", producer_id, epoch, 0) == (0, 0)
        assert produce_transactional(sock, "sequenced", "sequenced", producer_id, epoch, 5)[0] == OUT_OF_ORDER_SEQUENCE
        assert produce_transactional(sock, "sequenced", "sequenced", producer_id, epoch, 1) == (0, 1), "nothing written"
        assert end_txn(sock, "sequenced", producer_id, epoch, True) == 0
    assert [v for _, v in read_all(broker.address, "sequenced", "read_committed", 2)] == ["v", "v"]


def wait_until_open(log_path, seconds):
    """Waits until the worker's last line says a transaction is open: 1, or 0 on timeout."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        if lines and lines[-1].startswith('{"open"'):
            return 1
        time.sleep(0.01)
    return 0


def run_workers_through_crashes(tmp_path, seed):
    """Acceptance 1: three consume-transform-produce instances, each SIGKILLed at random
    moments and restarted, and the broker SIGKILLed twice; the output holds each input
    record exactly once for read_committed consumers."""
    rng = random.Random(seed)
    broker = Broker(tmp_path / "data", "--cores", "2").start()
    workers = {}
    try:
        create(broker.address, ("ctp-in", 6), ("ctp-out", 6))
        # Input arrives all through the crashes; what the feeder was told is written must
        # come out exactly once (what it was not told may or may not be there, once).
        feeder = Producer({"bootstrap.servers": broker.address, "enable.idempotence": True, "linger.ms": 20})
        sent, acknowledged = [], set()

        def on_delivery(error, message):
            if error is None:
                acknowledged.add(message.value().decode())

        def feed(count):
            for _ in range(count):
                value = f"record-{len(sent)}"
                sent.append(value)
                feeder.produce("ctp-in", key=value, value=value, on_delivery=on_delivery)
            feeder.poll(0)

        feed(300)
        def start(slot):
            log = open(tmp_path / f"worker-{slot}.log", "a")
            workers[slot] = subprocess.Popen(
                [sys.executable, str(HERE / "transactional_worker.py"), broker.address, "ctp-in", "ctp-out",
                 "ctp-group", f"ctp-{slot}", "--seconds", "150", "--idle", "10", "--batch", "40", "--pause", "0.3"],
                stdout=log, stderr=log)

        for slot in range(3):
            start(slot)
        broker_kills, kills, kills_mid_transaction = sorted(rng.uniform(4, 20) for _ in range(2)), 0, 0
        chaos_until = time.time() + 24
        started = time.time()
        while time.time() < chaos_until:
            for _ in range(rng.randrange(2, 10)):
                time.sleep(0.25)
                feed(40)
            if broker_kills and time.time() - started > broker_kills[0]:
                broker_kills.pop(0)
                broker.stop(signal.SIGKILL)
                broker.start()
                continue
            slot = rng.randrange(3)
            kills += 1
            kills_mid_transaction += wait_until_open(tmp_path / f"worker-{slot}.log", seconds=3)
            workers[slot].send_signal(signal.SIGKILL)
            workers[slot].wait()
            start(slot)
        feeder.flush(60)
        # Let them finish: an instance exits 0 once the input is idle; one that died (a stuck
        # client, see transactional_worker.py) is restarted until then.
        finished, deadline = set(), time.time() + 150
        while len(finished) < 3:
            assert time.time() < deadline, f"instances {set(range(3)) - finished} never finished"
            for slot in set(range(3)) - finished:
                status = workers[slot].poll()
                if status == 0:
                    finished.add(slot)
                elif status is not None:
                    start(slot)
            time.sleep(0.2)
        output = [v for _, v in read_all(broker.address, "ctp-out", "read_committed", len(acknowledged), seconds=60)]
        assert broker.exited_by_itself() is None, broker.log_tail()
        duplicates = len(output) - len(set(output))
        missing = acknowledged - set(output)
        unknown = set(output) - set(sent)
        logs = "\n".join((tmp_path / f"worker-{slot}.log").read_text()[-1500:] for slot in range(3))
        assert duplicates == 0 and not missing and not unknown, (
            f"seed {seed}: {duplicates} duplicates, {len(missing)} missing, {len(unknown)} unknown, "
            f"{len(output)} read of {len(acknowledged)} acknowledged\n{logs}")
        print(f"seed {seed}: {len(acknowledged)} records exactly once through 2 broker kills, {kills} worker kills "
              f"({kills_mid_transaction} with a transaction open)")
        assert kills_mid_transaction > 0
    finally:
        for worker in workers.values():
            worker.kill()
        broker.stop(signal.SIGKILL)


def test_consume_transform_produce_is_exactly_once_through_crashes(tmp_path):
    run_workers_through_crashes(tmp_path, seed=int(time.time()) % 1000)
