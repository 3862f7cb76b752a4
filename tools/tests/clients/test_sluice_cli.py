"""The `sluice` client commands (topic, produce, consume) against a real broker, checked
against what real Kafka clients see; and `sluice serve --config`."""
import re
import subprocess
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import SLUICE


def has_config(described, name, value, source):
    """Whether `sluice topic describe` printed this config line (columns padded to the longest name)."""
    return re.search(rf"^\s*{re.escape(name)}\s+{re.escape(value)}\s+\({source}\)$", described, re.M) is not None


def sluice(broker, *args, stdin=None, check=True):
    result = subprocess.run([str(SLUICE), *args, "--brokers", broker.address], input=stdin, capture_output=True,
                            timeout=120)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def test_topic_commands_create_list_describe_alter_and_delete(broker):
    created = sluice(broker, "topic", "create", "t-admin", "-p", "4", "-c", "retention.ms=3600000")
    assert created.stdout.decode() == "created t-admin\n"
    again = sluice(broker, "topic", "create", "t-admin", check=False)
    assert again.returncode != 0 and b"TopicAlreadyExists" in again.stderr

    listing = sluice(broker, "topic", "list").stdout.decode().splitlines()
    assert listing[0].split() == ["TOPIC", "PARTITIONS"]
    assert ["t-admin", "4"] in [line.split() for line in listing[1:]]

    described = sluice(broker, "topic", "describe", "t-admin").stdout.decode()
    assert "4 partitions" in described
    assert [line.split() for line in described.splitlines() if line.strip().startswith("3 ")] == [["3", "0", "0", "0"]]
    assert has_config(described, "retention.ms", "3600000", "topic")

    sluice(broker, "topic", "alter-config", "t-admin", "--set", "retention.bytes=1000000", "--delete", "retention.ms")
    described = sluice(broker, "topic", "describe", "t-admin").stdout.decode()
    assert has_config(described, "retention.bytes", "1000000", "topic")
    assert has_config(described, "retention.ms", "604800000", "default")
    refused = sluice(broker, "topic", "alter-config", "t-admin", "--set", "retention.ms=soon", check=False)
    assert refused.returncode != 0 and b"InvalidConfig" in refused.stderr

    assert sluice(broker, "topic", "delete", "t-admin").stdout.decode() == "deleted t-admin\n"
    assert "t-admin" not in sluice(broker, "topic", "list").stdout.decode()
    missing = sluice(broker, "topic", "describe", "t-admin", check=False)
    assert missing.returncode != 0 and b"UnknownTopicOrPartition" in missing.stderr


def test_produce_and_consume_round_trip_and_agree_with_librdkafka(broker):
    sluice(broker, "topic", "create", "t-cli", "-p", "6")
    lines = b"".join(b"key-%d:value %d \x01\n" % (i, i) for i in range(5000))
    sluice(broker, "produce", "t-cli", "-K", ":", "-H", "via=sluice", "-H", "via=again", stdin=lines)

    # A consumer built on librdkafka reads what `sluice produce` wrote, duplicate header
    # keys included, and keys sit where Kafka's murmur2 partitioner puts them.
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition("t-cli", p, 0) for p in range(6)])
    seen = {}
    for _ in range(200):
        for m in consumer.consume(1000, 0.5):
            assert m.error() is None, m.error()
            seen[m.key()] = (m.partition(), m.value(), m.headers())
        if len(seen) == 5000:
            break
    consumer.close()
    assert len(seen) == 5000
    assert seen[b"key-7"][1:] == (b"value 7 \x01", [("via", b"sluice"), ("via", b"again")])
    placed = defaultdict(set)
    sluice(broker, "topic", "create", "t-cli-check", "-p", "6")
    producer = Producer({"bootstrap.servers": broker.address, "partitioner": "murmur2_random"})
    for i in range(0, 5000, 50):
        key = b"key-%d" % i
        producer.produce("t-cli-check", key=key, value=b"", on_delivery=lambda e, m: placed[m.key()].add(m.partition()))
    assert producer.flush(30) == 0
    assert placed and all(parts == {seen[key][0]} for key, parts in placed.items())

    # `sluice consume` reads them back, all partitions, byte for byte.
    everything = sluice(broker, "consume", "t-cli", "-e", "-f", "%k:%v\\n").stdout
    assert sorted(everything.splitlines(keepends=True)) == sorted(lines.splitlines(keepends=True))
    formatted = sluice(broker, "consume", "t-cli", "-e", "-p", str(seen[b"key-7"][0]), "-f", "%k|%h|%S\\n").stdout
    assert b"key-7|via=sluice,via=again|9\n" in formatted.splitlines(keepends=True)


def test_consume_reads_compressed_batches_from_offsets_and_timestamps(broker):
    producer = Producer({"bootstrap.servers": broker.address, "compression.type": "zstd", "linger.ms": 20})
    for i in range(1000):
        producer.produce("t-zstd", key=b"k%d" % i, value=b"v%d" % i, timestamp=1_700_000_000_000 + i)
    assert producer.flush(30) == 0

    def consume(*args):
        return sluice(broker, "consume", "t-zstd", "-e", "-f", "%o %k %v %T\\n", *args).stdout.decode().splitlines()

    assert consume() == [f"{i} k{i} v{i} {1_700_000_000_000 + i}" for i in range(1000)]
    assert consume("-o", "990") == [f"{i} k{i} v{i} {1_700_000_000_000 + i}" for i in range(990, 1000)]
    assert consume("-o", "-3") == [f"{i} k{i} v{i} {1_700_000_000_000 + i}" for i in range(997, 1000)]
    assert consume("-o", "@1700000000500", "-n", "2") == [f"{i} k{i} v{i} {1_700_000_000_000 + i}" for i in (500, 501)]
    assert consume("-o", "end") == []


@pytest.mark.parametrize("acks", ["0", "1"])
def test_produce_with_weaker_acks_still_delivers(broker, acks):
    topic = f"t-acks-{acks}"
    sluice(broker, "topic", "create", topic)
    sluice(broker, "produce", topic, "--acks", acks, stdin=b"".join(b"m%d\n" % i for i in range(100)))
    # acks=0 has no answer to wait for: read until all 100 are there (bounded).
    for _ in range(50):
        got = sluice(broker, "consume", topic, "-e").stdout.splitlines()
        if len(got) == 100:
            break
    assert got == [b"m%d" % i for i in range(100)]


def test_serve_reads_its_settings_from_a_config_file(start_broker, tmp_path):
    config = tmp_path / "sluice.toml"
    config.write_text('num-partitions = 3\n[topic-defaults]\n"retention.ms" = 60000\n')
    broker = start_broker("--config", str(config), "--cores", "1")
    sluice(broker, "produce", "auto-created", stdin=b"hello\n")
    described = sluice(broker, "topic", "describe", "auto-created").stdout.decode()
    assert "3 partitions" in described
    assert has_config(described, "retention.ms", "60000", "default")
    assert sluice(broker, "consume", "auto-created", "-e").stdout == b"hello\n"


def test_the_internal_offsets_topic_is_created_by_the_broker_only(broker):
    refused = sluice(broker, "topic", "create", "__consumer_offsets", "-p", "3", check=False)
    assert refused.returncode != 0 and b"InvalidRequest" in refused.stderr
    # A client asking for its metadata (auto-creation allowed) gets the broker's own layout.
    sluice(broker, "produce", "__consumer_offsets", check=False, stdin=b"")
    described = sluice(broker, "topic", "describe", "__consumer_offsets").stdout.decode()
    assert "50 partitions" in described and has_config(described, "cleanup.policy", "compact", "topic")
    assert "(internal)" in sluice(broker, "topic", "list").stdout.decode()
