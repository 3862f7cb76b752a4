"""Kafka 4.x behaviours unmodified clients rely on (issue 11), each checked with a real
client against a real broker: keyless records to a compacted topic, manual replica
assignment, the full list of topic configs, commits to partitions that do not exist, and
the transaction timeout limit of InitProducerId."""
import warnings

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic)

# Every topic config Kafka 4.x describes.
KAFKA_TOPIC_CONFIGS = {
    "cleanup.policy", "compression.gzip.level", "compression.lz4.level", "compression.type",
    "compression.zstd.level", "delete.retention.ms", "file.delete.delay.ms", "flush.messages", "flush.ms",
    "follower.replication.throttled.replicas", "index.interval.bytes", "leader.replication.throttled.replicas",
    "local.retention.bytes", "local.retention.ms", "max.compaction.lag.ms", "max.message.bytes",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms", "message.timestamp.type",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "min.insync.replicas", "preallocate",
    "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable", "retention.bytes",
    "retention.ms", "segment.bytes", "segment.index.bytes", "segment.jitter.ms", "segment.ms",
    "unclean.leader.election.enable",
}
SOURCE_TOPIC, SOURCE_DEFAULT = 1, 5


def create(admin, *topics):
    for future in admin.create_topics(list(topics)).values():
        future.result(30)


def kafka_error(future_or_call):
    """The KafkaError a future (or a call) fails with."""
    with pytest.raises(KafkaException) as raised:
        future_or_call.result(30) if hasattr(future_or_call, "result") else future_or_call()
    return raised.value.args[0]


def test_keyless_records_to_a_compacted_topic_are_refused_per_record(broker):
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError, KafkaError as PythonKafkaError
    admin = AdminClient({"bootstrap.servers": broker.address})
    create(admin, NewTopic("compacted", 2, config={"cleanup.policy": "compact"}))

    # kafka-python hands each record its own KIP-467 error: the keyless one gets the
    # broker's reason, its batch mates are failed for being in the same batch.
    producer = KafkaProducer(bootstrap_servers=broker.address, linger_ms=200, retries=0)
    futures = [producer.send("compacted", key=key, value=b"v", partition=0) for key in (b"a", None, b"c")]
    other = producer.send("compacted", key=b"k", value=b"v", partition=1)
    producer.flush(30)
    with pytest.raises(InvalidRecordError) as keyless:
        futures[1].get(10)
    assert "Compacted topic cannot accept message without key in topic partition compacted-0." in str(keyless.value)
    for batch_mate in (futures[0], futures[2]):
        with pytest.raises(PythonKafkaError) as refused:
            batch_mate.get(10)
        assert "part of a batch which had one more more invalid records" in str(refused.value)
    assert other.get(10).offset == 0, "the other partition's batch of the same request was appended"
    producer.close()

    # librdkafka: the keyless record's batch fails with INVALID_RECORD; nothing of it is stored.
    reports = []
    producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 50})
    for key in (b"k", None):
        producer.produce("compacted", key=key, value=b"v", partition=0,
                         on_delivery=lambda error, message: reports.append((message.key(), error and error.code())))
    assert producer.flush(30) == 0
    assert (None, KafkaError.INVALID_RECORD) in reports, reports
    stored = sum(1 for _, error in reports if error is None)
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "check"})
    assert consumer.get_watermark_offsets(TopicPartition("compacted", 0), 10) == (0, stored)
    consumer.close()


def test_manual_replica_assignment_naming_this_broker_is_accepted(broker):
    from kafka.admin import KafkaAdminClient, NewTopic as PythonNewTopic
    from kafka.errors import InvalidReplicationAssignmentError
    admin = AdminClient({"bootstrap.servers": broker.address})
    create(admin, NewTopic("assigned", 3, replica_assignment=[[0], [0], [0]]))
    assert len(admin.list_topics("assigned", timeout=10).topics["assigned"].partitions) == 3
    error = kafka_error(admin.create_topics([NewTopic("elsewhere", 2, replica_assignment=[[0], [7]])])["elsewhere"])
    assert error.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert "includes broker 7, but no such broker is registered" in error.str()
    # CreatePartitions takes an assignment for each new partition the same way.
    admin.create_partitions([NewPartitions("assigned", 4, replica_assignment=[[0]])])["assigned"].result(30)
    error = kafka_error(admin.create_partitions([NewPartitions("assigned", 5, replica_assignment=[[7]])])["assigned"])
    assert error.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert len(admin.list_topics("assigned", timeout=10).topics["assigned"].partitions) == 4

    python_admin = KafkaAdminClient(bootstrap_servers=broker.address)
    python_admin.create_topics([PythonNewTopic("assigned-too", replica_assignments={0: [0], 1: [0]})])
    for assignments, reason in [
        ({0: [0, 0]}, "includes the broker 0 more than once"),
        ({0: [0], 2: [0]}, "partitions should be a consecutive 0-based integer sequence"),
        ({0: []}, "includes an empty replica list"),
    ]:
        with pytest.raises(InvalidReplicationAssignmentError) as refused:
            python_admin.create_topics([PythonNewTopic("refused", replica_assignments=assignments)])
        assert reason in str(refused.value), refused.value
    python_admin.close()


def test_describe_configs_returns_every_kafka_topic_config_and_takes_them_all_back(broker):
    admin = AdminClient({"bootstrap.servers": broker.address})
    create(admin, NewTopic("configured", 1, config={"retention.ms": "3600000"}))
    resource = ConfigResource("topic", "configured")
    described = admin.describe_configs([resource])[resource].result(30)
    assert set(described) == KAFKA_TOPIC_CONFIGS
    assert described["retention.ms"].value == "3600000" and described["retention.ms"].source == SOURCE_TOPIC
    assert described["compression.type"].value == "producer"
    assert described["min.cleanable.dirty.ratio"].value == "0.5"
    assert described["segment.bytes"].value == "134217728", "sluice's own default, not Kafka's"
    assert all(entry.source == SOURCE_DEFAULT for name, entry in described.items() if name != "retention.ms")
    assert {(s.name, s.value, s.source) for s in described["cleanup.policy"].synonyms.values()} == \
        {("log.cleanup.policy", "delete", SOURCE_DEFAULT)}

    # Read-modify-write: every described value sent back, one changed.
    values = {name: entry.value for name, entry in described.items()}
    values["max.compaction.lag.ms"] = "86400000"
    values["compression.type"] = "zstd"
    changed = ConfigResource("topic", "configured", set_config=values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # alter_configs is what older tools use
        admin.alter_configs([changed])[changed].result(30)
    described = admin.describe_configs([resource])[resource].result(30)
    assert described["max.compaction.lag.ms"].value == "86400000"
    assert described["max.compaction.lag.ms"].source == SOURCE_TOPIC, "accepted, stored, described"
    assert described["compression.type"].value == "zstd"

    def incremental(name, value):
        entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        change = ConfigResource("topic", "configured", incremental_configs=[entry])
        return admin.incremental_alter_configs([change])[change]

    for unknown in ["no.such.config", "message.format.version", "message.timestamp.difference.max.ms"]:
        error = kafka_error(incremental(unknown, "1"))
        assert error.code() == KafkaError.INVALID_CONFIG and f"Unknown topic config name: {unknown}" in error.str()
    error = kafka_error(incremental("min.cleanable.dirty.ratio", "2"))
    assert error.code() == KafkaError.INVALID_CONFIG
    assert "Invalid value 2 for configuration min.cleanable.dirty.ratio" in error.str()


def test_offset_commit_to_a_missing_topic_or_partition_is_refused_for_that_partition(broker):
    admin = AdminClient({"bootstrap.servers": broker.address})
    create(admin, NewTopic("committed", 1))
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "committer"})
    for missing in [TopicPartition("no-such-topic", 0, 5), TopicPartition("committed", 9, 5)]:
        error = kafka_error(lambda: consumer.commit(offsets=[missing], asynchronous=False))
        assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    # The partitions that exist are committed all the same.
    error = kafka_error(lambda: consumer.commit(
        offsets=[TopicPartition("committed", 0, 7), TopicPartition("committed", 3, 1)], asynchronous=False))
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert consumer.committed([TopicPartition("committed", 0)], 10)[0].offset == 7
    consumer.close()


def test_init_producer_id_refuses_a_transaction_timeout_above_the_maximum(broker):
    def init_error(timeout_ms):
        producer = Producer({"bootstrap.servers": broker.address, "transactional.id": f"tx-{timeout_ms}",
                             "transaction.timeout.ms": timeout_ms, "log_level": 0})
        return kafka_error(lambda: producer.init_transactions(30))

    assert init_error(900_001).code() == KafkaError.INVALID_TRANSACTION_TIMEOUT
    # Within the limit the producer gets its id.
    producer = Producer({"bootstrap.servers": broker.address, "transactional.id": "tx-max",
                         "transaction.timeout.ms": 900_000})
    producer.init_transactions(30)
