"""aiokafka's group consumer against a real broker: it joins a group, consumes everything
in a 3-partition topic, commits, and leaves; a later member of the same group resumes from
the committed offsets and gets only what was produced after them."""
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
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
