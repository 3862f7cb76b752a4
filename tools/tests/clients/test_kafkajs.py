"""kafkajs (Node.js) against a real broker: tools/tests/clients/js/group_consumer.js produces
N records, then a kafkajs consumer group member joins (in under 5 s), consumes all N,
commits and leaves; the group's committed offsets are the ends of the partitions, and a
second run in the same group consumes only the records produced after them."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
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
