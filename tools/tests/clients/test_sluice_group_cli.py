"""`sluice group list|describe|delete|reset-offsets` against a real broker, checked
against what a librdkafka group consumer committed and reads."""
import subprocess
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import SLUICE

GROUP_FLAGS = ("--cores", "2", "--group-initial-rebalance-delay-ms", "1000")
TOPIC = "t-group-cli"
PARTITIONS = 3
MESSAGES = 300


def sluice(broker, *args, check=True):
    result = subprocess.run([str(SLUICE), *args, "--brokers", broker.address], capture_output=True, timeout=60)
    if check:
        assert result.returncode == 0, (result.stdout.decode(), result.stderr.decode())
    return result


def produce(address):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": address, "linger.ms": 5})
    for i in range(MESSAGES):
        producer.produce(TOPIC, key=b"%d" % i, value=b"v%d" % i)
    assert producer.flush(30) == 0


def group_consumer(address, group):
    consumer = Consumer({"bootstrap.servers": address, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe([TOPIC])
    return consumer


def consume(consumer, count, seconds=60):
    """Reads up to `count` messages (bounded by time), committing each synchronously."""
    got = []
    deadline = time.time() + seconds
    while len(got) < count and time.time() < deadline:
        for m in consumer.consume(min(50, count - len(got)), 0.5):
            assert m.error() is None, m.error()
            got.append(m)
            consumer.commit(message=m, asynchronous=False)
    return got


def lag_table(broker, group):
    """describe's partition table: {(topic, partition): (current, end, lag, member)}."""
    out = sluice(broker, "group", "describe", group).stdout.decode()
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["TOPIC", "PARTITION"])
    rows = {}
    for line in lines[header + 1:]:
        cells = line.split()
        if len(cells) != 6:
            break
        rows[(cells[0], int(cells[1]))] = (cells[2], cells[3], cells[4], cells[5])
    return out, rows


def end_offsets(address):
    checker = Consumer({"bootstrap.servers": address, "group.id": "unused-checker"})
    ends = [checker.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in range(PARTITIONS)]
    checker.close()
    return ends


def test_group_list_describe_reset_and_delete(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address)
    ends = end_offsets(broker.address)
    assert sum(ends) == MESSAGES

    consumer = group_consumer(broker.address, "cli-g")
    got = consume(consumer, 200)
    assert len(got) == 200
    # librdkafka may not have read from every partition yet: those start at 0 (earliest),
    # committed as such so that every partition has a committed offset.
    seen = {m.partition() for m in got}
    unseen = [TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS) if p not in seen]
    if unseen:
        consumer.commit(offsets=unseen, asynchronous=False)

    # While the consumer is a member: describe shows it owning the partitions, and
    # reset-offsets refuses.
    out, rows = lag_table(broker, "cli-g")
    assert "state Stable" in out and "1 member" in out, out
    assert sorted(rows) == [(TOPIC, p) for p in range(PARTITIONS)], out
    assert all(member != "-" for (_, _, _, member) in rows.values()), out
    refused = sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--to-earliest", check=False)
    assert refused.returncode != 0
    assert b"active members" in refused.stderr and b"stop them first" in refused.stderr, refused.stderr
    refused_delete = sluice(broker, "group", "delete", "cli-g", check=False)
    assert refused_delete.returncode != 0 and b"NonEmptyGroup" in refused_delete.stderr, refused_delete.stderr
    consumer.close()

    listing = sluice(broker, "group", "list").stdout.decode().splitlines()
    assert listing[0].split() == ["GROUP", "STATE", "PROTOCOL-TYPE"]
    assert ["cli-g", "Empty", "consumer"] in [line.split() for line in listing[1:]], listing

    out, rows = lag_table(broker, "cli-g")
    assert "state Empty" in out and "0 members" in out, out
    assert sorted(rows) == [(TOPIC, p) for p in range(PARTITIONS)], out
    for p in range(PARTITIONS):
        current, end, lag, member = rows[(TOPIC, p)]
        assert int(end) == ends[p] and int(lag) == ends[p] - int(current) and member == "-", out
    assert sum(int(lag) for (_, _, lag, _) in rows.values()) == MESSAGES - 200, out
    assert f"total lag {MESSAGES - 200}" in out

    # A dry run changes nothing.
    dry = sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--to-earliest", "--dry-run")
    assert "nothing committed" in dry.stdout.decode()
    assert sum(int(lag) for (_, _, lag, _) in lag_table(broker, "cli-g")[1].values()) == MESSAGES - 200

    reset = sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--to-earliest").stdout.decode()
    new = {int(line.split()[1]): int(line.split()[3]) for line in reset.splitlines()[1:] if line.startswith(TOPIC)}
    assert new == {p: 0 for p in range(PARTITIONS)}, reset
    out, rows = lag_table(broker, "cli-g")
    assert sum(int(lag) for (_, _, lag, _) in rows.values()) == MESSAGES, out
    assert all(current == "0" for (current, _, _, _) in rows.values()), out

    # A new member of the group reads everything again.
    again = group_consumer(broker.address, "cli-g")
    got = [m.value() for m in consume(again, MESSAGES)]
    again.close()
    assert sorted(got) == sorted(b"v%d" % i for i in range(MESSAGES))
    out, rows = lag_table(broker, "cli-g")
    assert sum(int(lag) for (_, _, lag, _) in rows.values()) == 0, out

    # One partition to an offset; beyond the end is held at the end.
    sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--partition", "1", "--to-offset", "7")
    out, rows = lag_table(broker, "cli-g")
    assert rows[(TOPIC, 1)][:3] == ("7", str(ends[1]), str(ends[1] - 7)), out
    assert rows[(TOPIC, 0)][2] == "0" and rows[(TOPIC, 2)][2] == "0", out
    beyond = sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--partition", "2", "--to-offset",
                    "1000000").stdout.decode()
    assert [line.split() for line in beyond.splitlines()[1:2]] == [[TOPIC, "2", str(ends[2]), str(ends[2])]], beyond
    # To a time before everything: the start; --to-latest: the ends.
    sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--to-datetime-ms", "0")
    assert all(r[0] == "0" for r in lag_table(broker, "cli-g")[1].values())
    sluice(broker, "group", "reset-offsets", "cli-g", "--topic", TOPIC, "--to-latest")
    assert all(r[2] == "0" for r in lag_table(broker, "cli-g")[1].values())

    # An unknown group is said to be so, not an error.
    unknown = sluice(broker, "group", "describe", "no-such-group").stdout.decode()
    assert "does not exist" in unknown, unknown

    assert sluice(broker, "group", "delete", "cli-g").stdout.decode() == "deleted cli-g\n"
    listing = sluice(broker, "group", "list").stdout.decode()
    assert "cli-g" not in listing, listing
    assert "does not exist" in sluice(broker, "group", "describe", "cli-g").stdout.decode()
    missing = sluice(broker, "group", "delete", "cli-g", check=False)
    assert missing.returncode != 0, missing.stdout
