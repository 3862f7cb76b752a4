"""aiokafka against a real broker. Its group consumer joins a group, consumes everything
in a 3-partition topic, commits, and leaves; a later member of the same group resumes from
the committed offsets and gets only what was produced after them. Its transactional
producer (issue 13): read_committed consumers see exactly the committed transactions,
offsets sent to a transaction are committed only with it, and a newer instance fences an
older one."""
import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
MESSAGES = 900
LATER = 30
GROUP_FLAGS = ("--cores", "2", "--group-initial-rebalance-delay-ms", "1000")


def create_topic(address, topic):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
        future.result(30)


async def produce(address, topic, start, count):
    producer = AIOKafkaProducer(bootstrap_servers=address, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, key=b"%d" % i, value=b"v%d" % i) for i in range(start, start + count)]
        await producer.flush()
        for future in sent:
            await future  # each record is acknowledged (raises otherwise)
    finally:
        await producer.stop()


async def consume(address, topic, group, expected, seconds):
    """Joins `group`, reads until `expected` records arrived (or `seconds` passed), commits
    and stops (LeaveGroup). Returns (values, assignment, committed offsets, end offsets)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=address, group_id=group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=10000, heartbeat_interval_ms=1000)
    await consumer.start()
    try:
        values = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while len(values) < expected and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            for records in batches.values():
                values.extend(r.value for r in records)
            if batches:
                await consumer.commit()
        # Nothing more than expected shows up.
        extra = await consumer.getmany(timeout_ms=1000)
        values.extend(r.value for records in extra.values() for r in records)
        assignment = consumer.assignment()
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = [await consumer.committed(tp) for tp in partitions]
        ends = await consumer.end_offsets(partitions)
        return values, assignment, committed, [ends[tp] for tp in partitions]
    finally:
        await consumer.stop()  # commits nothing (auto commit is off) and sends LeaveGroup


async def scenario(address):
    await produce(address, "aio", 0, MESSAGES)
    values, assignment, committed, ends = await consume(address, "aio", "aio-group", MESSAGES, 40)
    assert sorted(values) == sorted(b"v%d" % i for i in range(MESSAGES)), f"{len(values)} records"
    assert assignment == {TopicPartition("aio", p) for p in range(PARTITIONS)}
    assert sum(ends) == MESSAGES and all(ends), ends
    assert committed == ends

    # A second member of the group, after the first left, starts from the commits.
    await produce(address, "aio", MESSAGES, LATER)
    values, assignment, committed, ends = await consume(address, "aio", "aio-group", LATER, 40)
    assert sorted(values) == sorted(b"v%d" % i for i in range(MESSAGES, MESSAGES + LATER)), values
    assert assignment == {TopicPartition("aio", p) for p in range(PARTITIONS)}
    assert sum(ends) == MESSAGES + LATER
    assert committed == ends


def test_aiokafka_group_consumer_joins_consumes_commits_leaves_and_resumes(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    create_topic(broker.address, "aio")

    async def bounded():
        await asyncio.wait_for(scenario(broker.address), 120)

    try:
        asyncio.run(bounded())
    except BaseException:
        print(broker.log()[-20000:])
        raise
    log = broker.log()
    assert "panicked" not in log, log[-5000:]


# Transactions (issue 13) with aiokafka's transactional producer.

def run_bounded(broker, scenario, seconds=120):
    """Runs `scenario()` in a fresh event loop, at most `seconds`; the broker's log on failure."""
    async def bounded():
        await asyncio.wait_for(scenario(), seconds)

    try:
        asyncio.run(bounded())
    except BaseException:
        print(broker.log_tail(80))
        raise
    assert "panicked" not in broker.log(), broker.log_tail(80)


def create_topics(address, *topics):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics]).values():
        future.result(30)


async def read_to_end(address, topic, partitions, isolation, seconds=30):
    """Every record of `topic` a consumer with this isolation level gets, from the beginning
    until its position reaches the end offsets it was told at the start (the last stable
    offsets for read_committed): {partition: [(offset, value), ...]} in the order fetched."""
    consumer = AIOKafkaConsumer(bootstrap_servers=address, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", isolation_level=isolation)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = {p: [] for p in range(partitions)}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            positions = [await consumer.position(tp) for tp in tps]
            if all(position >= ends[tp] for position, tp in zip(positions, tps)):
                break
            assert loop.time() < deadline, f"{isolation}: positions {positions} never reached {ends}"
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                seen[tp.partition].extend((r.offset, r.value.decode()) for r in records)
        return seen
    finally:
        await consumer.stop()


def test_aiokafka_transactions_read_committed_sees_committed_only_and_read_uncommitted_all(broker):
    create_topics(broker.address, ("aio-txn", PARTITIONS))

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=broker.address, transactional_id="aio-aborter")
        await producer.start()
        committed, everything = {p: [] for p in range(PARTITIONS)}, {p: [] for p in range(PARTITIONS)}
        try:
            for transaction in range(9):
                await producer.begin_transaction()
                futures = [await producer.send("aio-txn", key=b"%d" % i, value=f"{transaction}-{i}".encode())
                           for i in range(10)]
                if transaction % 3 == 1:
                    # Written (acknowledged) before the abort, so read_uncommitted sees them.
                    metadata = [await future for future in futures]
                    await producer.abort_transaction()
                else:
                    await producer.commit_transaction()
                    metadata = [await future for future in futures]
                for i, meta in enumerate(metadata):
                    record = (meta.offset, f"{transaction}-{i}")
                    everything[meta.partition].append(record)
                    if transaction % 3 != 1:
                        committed[meta.partition].append(record)
        finally:
            await producer.stop()
        assert all(everything.values()), everything  # keys spread the records over all partitions
        seen_committed = await read_to_end(broker.address, "aio-txn", PARTITIONS, "read_committed")
        seen_everything = await read_to_end(broker.address, "aio-txn", PARTITIONS, "read_uncommitted")
        # Exactly the committed records, at the offsets they were written to, in order.
        assert seen_committed == committed
        assert seen_everything == everything
        assert sum(map(len, committed.values())) == 60 and sum(map(len, everything.values())) == 90

    run_bounded(broker, scenario)


def test_aiokafka_send_offsets_to_transaction_commits_the_groups_offset_only_on_commit(broker):
    create_topics(broker.address, ("aio-in", 1), ("aio-out", 1))
    group, source = "aio-ctp", TopicPartition("aio-in", 0)

    async def scenario():
        await produce(broker.address, "aio-in", 0, 10)
        # The transform's input, read as a read_committed consumer of the group would.
        reader = AIOKafkaConsumer(bootstrap_servers=broker.address, group_id=group, enable_auto_commit=False,
                                  auto_offset_reset="earliest", isolation_level="read_committed")
        await reader.start()
        producer = AIOKafkaProducer(bootstrap_servers=broker.address, transactional_id="aio-ctp-offsets")
        await producer.start()
        try:
            reader.assign([source])
            inputs, deadline = [], asyncio.get_running_loop().time() + 30
            while len(inputs) < 10:
                assert asyncio.get_running_loop().time() < deadline, inputs
                for records in (await reader.getmany(timeout_ms=200)).values():
                    inputs.extend(records)
            assert [(r.offset, r.value) for r in inputs] == [(i, b"v%d" % i) for i in range(10)]
            assert await reader.committed(source) is None

            async def transform(values, offset, commit):
                await producer.begin_transaction()
                for value in values:
                    await producer.send("aio-out", value=value)
                if offset is not None:
                    await producer.send_offsets_to_transaction({source: offset}, group)
                await (producer.commit_transaction() if commit else producer.abort_transaction())

            transformed = [r.value.upper() for r in inputs]
            # Aborted: nothing is committed for the group, before or after the abort.
            await transform(transformed[:4], 4, commit=False)
            assert await reader.committed(source) is None
            # Committed: the group's offset is the one sent (the markers follow EndTxn's answer).
            await transform(transformed, 10, commit=True)
            deadline = asyncio.get_running_loop().time() + 10
            while (offset := await reader.committed(source)) != 10:
                assert offset is None, offset
                assert asyncio.get_running_loop().time() < deadline, "the sent offset never became committed"
                await asyncio.sleep(0.1)
            # Aborted again: the committed offset stays. The next transaction can add its
            # partition only once the aborted one is complete, its markers written, so after
            # it the abort is final.
            await transform(transformed[:7], 7, commit=False)
            assert await reader.committed(source) == 10
            await transform([b"after"], None, commit=True)
            assert await reader.committed(source) == 10
        finally:
            await producer.stop()
            await reader.stop()
        output = await read_to_end(broker.address, "aio-out", 1, "read_committed")
        assert [value for _, value in output[0]] == [f"V{i}" for i in range(10)] + ["after"]
        everything = await read_to_end(broker.address, "aio-out", 1, "read_uncommitted")
        assert [value for _, value in everything[0]] == (
            [f"V{i}" for i in range(4)] + [f"V{i}" for i in range(10)] + [f"V{i}" for i in range(7)] + ["after"])

    run_bounded(broker, scenario)


def test_aiokafka_a_new_instance_fences_the_old_one_and_aborts_its_transaction(broker):
    create_topics(broker.address, ("aio-fenced", 1))

    async def scenario():
        older = AIOKafkaProducer(bootstrap_servers=broker.address, transactional_id="aio-shared")
        newer = AIOKafkaProducer(bootstrap_servers=broker.address, transactional_id="aio-shared")
        await older.start()
        try:
            await older.begin_transaction()
            await (await older.send("aio-fenced", value=b"from the older instance"))
            # The newer instance's InitProducerId bumps the epoch and aborts the older's transaction.
            await newer.start()
            await newer.begin_transaction()
            await newer.send("aio-fenced", value=b"from the newer instance")
            await newer.commit_transaction()
            # The older instance's commit fails, fatally: it is fenced.
            with pytest.raises(KafkaError) as raised:
                await older.commit_transaction()
        finally:
            await newer.stop()
            await older.stop()
        committed = await read_to_end(broker.address, "aio-fenced", 1, "read_committed")
        assert [value for _, value in committed[0]] == ["from the newer instance"]
        everything = await read_to_end(broker.address, "aio-fenced", 1, "read_uncommitted")
        assert [value for _, value in everything[0]] == ["from the older instance", "from the newer instance"]
        # aiokafka raises ProducerFenced when the broker answers INVALID_PRODUCER_EPOCH, as
        # Kafka does to the request versions it uses (EndTxn v0), which predate PRODUCER_FENCED.
        assert isinstance(raised.value, ProducerFenced), (
            f"{type(raised.value).__name__}: {raised.value!r} caused by {raised.value.__cause__!r}")

    run_bounded(broker, scenario)
