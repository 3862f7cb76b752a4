"""kafkajs (Node.js) against a real broker: tools/tests/clients/js/group_consumer.js produces
N records, then a kafkajs consumer group member joins (in under 5 s), consumes all N,
commits and leaves; the group's committed offsets are the ends of the partitions, and a
second run in the same group consumes only the records produced after them.
tools/tests/clients/js/transactions.js drives kafkajs transactions (issue 13): read_committed
consumers see exactly the committed ones, sendOffsets commits the group's offset only with
its transaction, and a newer instance fences an older one."""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

JS = Path(__file__).resolve().parent / "js"
PARTITIONS = 3
MESSAGES = 600
GROUP_FLAGS = ("--cores", "2", "--group-initial-rebalance-delay-ms", "1000")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (make client-deps installs it)")


def test_kafkajs_group_consumer_joins_within_5s_consumes_commits_and_leaves(start_broker):
    assert (JS / "node_modules" / "kafkajs").is_dir(), "run `npm ci --prefix tools/tests/clients/js` (make client-deps)"
    broker = start_broker(*GROUP_FLAGS)
    admin = AdminClient({"bootstrap.servers": broker.address})
    for future in admin.create_topics([NewTopic("js-topic", PARTITIONS, 1)]).values():
        future.result(30)

    for run_number in (1, 2):
        # The second run joins the same group afterwards and resumes from the commits.
        run = subprocess.run(["node", str(JS / "group_consumer.js"), broker.address, "js-topic", "js-group",
                              str(MESSAGES), "60000"],
                             capture_output=True, text=True, timeout=90)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        assert run.returncode == 0 and lines, \
            f"rc={run.returncode}\n{run.stdout}\n{run.stderr}\n{broker.log()[-10000:]}"
        result = json.loads(lines[-1])
        print(f"kafkajs run {run_number}:", result)
        assert "error" not in result and "crash" not in result, result
        # All of this run's records, and none of the first run's again.
        assert result["consumed"] == MESSAGES and result["distinct"] == MESSAGES, result
        assert sorted(result["member_partitions"]) == list(range(PARTITIONS)), result
        assert result["join_ms"] is not None and result["join_ms"] < 5000, result

        checker = Consumer({"bootstrap.servers": broker.address, "group.id": "js-group",
                            "enable.auto.commit": False})
        try:
            partitions = [TopicPartition("js-topic", p) for p in range(PARTITIONS)]
            committed = checker.committed(partitions, timeout=10)
            ends = [checker.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
        finally:
            checker.close()
        assert sum(ends) == MESSAGES * run_number, ends
        assert [c.offset for c in committed] == ends
        assert {int(p): o for p, o in result["committed"].items()} == dict(enumerate(ends)), result
    assert "panicked" not in broker.log()


# Transactions (issue 13) with kafkajs: tools/tests/clients/js/transactions.js runs one
# scenario and prints what it observed.

def run_transactions_script(broker, scenario, seconds=60):
    assert (JS / "node_modules" / "kafkajs").is_dir(), "run `npm ci --prefix tools/tests/clients/js` (make client-deps)"
    run = subprocess.run(["node", str(JS / "transactions.js"), broker.address, scenario, str(seconds * 1000)],
                         capture_output=True, text=True, timeout=seconds + 30)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"rc={run.returncode}\n{run.stdout}\n{run.stderr}\n{broker.log_tail(60)}"
    result = json.loads(lines[-1])
    assert run.returncode == 0 and "error" not in result, \
        f"rc={run.returncode}\n{json.dumps(result, indent=1)}\n{run.stderr}\n{broker.log_tail(60)}"
    assert "panicked" not in broker.log()
    return result


def create_topics(address, *topics):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics]).values():
        future.result(30)


def by_partition(observed):
    """{"0": [[offset, value], ...]} as JSON has it, as {0: [(offset, value), ...]}."""
    return {int(p): [tuple(record) for record in records] for p, records in observed.items()}


def test_kafkajs_transactions_read_committed_sees_committed_only_and_read_uncommitted_all(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    create_topics(broker.address, ("js-txn", PARTITIONS))
    result = run_transactions_script(broker, "commit-abort")
    written, committed = by_partition(result["written"]), by_partition(result["committed"])
    assert all(written.values()) and sum(map(len, written.values())) == 90, written
    assert sum(map(len, committed.values())) == 60, committed
    assert {v for records in committed.values() for _, v in records} == {
        f"{t}-{i}" for t in range(9) if t % 3 != 1 for i in range(10)}
    # Exactly the committed records, at the offsets they were written to, in order; the
    # aborted ones only for read_uncommitted.
    assert by_partition(result["read_committed"]) == committed
    assert by_partition(result["read_uncommitted"]) == written


def test_kafkajs_send_offsets_commits_the_groups_offset_only_when_the_transaction_commits(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    create_topics(broker.address, ("js-in", 1), ("js-out", 1))
    feeder = Producer({"bootstrap.servers": broker.address})
    for i in range(10):
        feeder.produce("js-in", value=f"v{i}")
    feeder.flush(30)
    result = run_transactions_script(broker, "send-offsets")
    assert [tuple(record) for record in result["inputs"]] == [(i, f"v{i}") for i in range(10)]
    offsets = result["offsets"]
    # -1: no offset committed for the group.
    assert offsets["before"] == -1 and offsets["after_first_abort"] == -1, offsets
    assert offsets["after_commit"] == 10, offsets
    assert set(offsets["polled_before_commit_showed"]) <= {-1}, offsets
    assert offsets["after_second_abort"] == 10 and offsets["after_next_commit"] == 10, offsets
    # The same, seen by another client; and the output as read_committed consumers see it.
    checker = Consumer({"bootstrap.servers": broker.address, "group.id": "js-ctp", "enable.auto.commit": False})
    try:
        assert checker.committed([TopicPartition("js-in", 0)], timeout=10)[0].offset == 10
    finally:
        checker.close()
    assert read_values(broker.address, "js-out", "read_committed") == [f"V{i}" for i in range(10)] + ["after"]
    assert read_values(broker.address, "js-out", "read_uncommitted") == (
        [f"V{i}" for i in range(4)] + [f"V{i}" for i in range(10)] + [f"V{i}" for i in range(7)] + ["after"])


def test_kafkajs_a_new_instance_fences_the_old_one_and_aborts_its_transaction(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    create_topics(broker.address, ("js-fenced", 1))
    result = run_transactions_script(broker, "fencing")
    assert read_values(broker.address, "js-fenced", "read_committed") == ["from the newer instance"]
    assert read_values(broker.address, "js-fenced", "read_uncommitted") == [
        "from the older instance", "from the newer instance"]
    # kafkajs (EndTxn v0/v1, which predate PRODUCER_FENCED) knows fencing as Kafka answers
    # those versions: INVALID_PRODUCER_EPOCH, not retriable.
    error = result["fenced_error"]
    assert error is not None, "the fenced instance committed"
    assert (error["name"], error["type"], error["retriable"]) == (
        "KafkaJSProtocolError", "INVALID_PRODUCER_EPOCH", False), error


def read_values(address, topic, isolation):
    """The values of partition 0 of `topic` as a consumer with this isolation level reads
    them, from the beginning to the end offset it was told first (the last stable offset
    for read_committed)."""
    consumer = Consumer({"bootstrap.servers": address, "group.id": f"check-{isolation}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        values, deadline = [], time.time() + 30
        while (consumer.position([TopicPartition(topic, 0)])[0].offset or 0) < end:
            assert time.time() < deadline, f"{isolation}: never reached offset {end} of {topic}: {values}"
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                values.append(message.value().decode())
        return values
    finally:
        consumer.close()
