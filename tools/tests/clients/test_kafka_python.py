"""kafka-python: a produce/consume round trip and its admin client."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic


def test_kafka_python_round_trip(broker):
    producer = KafkaProducer(bootstrap_servers=broker.address, acks="all")
    for i in range(1000):
        producer.send("kp", key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)])
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.address, consumer_timeout_ms=5000, auto_offset_reset="earliest")
    consumer.assign([TopicPartition("kp", 0)])
    consumer.seek_to_beginning()
    got = [(m.offset, m.key, m.value, m.headers) for m in consumer]
    consumer.close()
    assert got == [(i, b"k%d" % i, b"v%d" % i, [("h", b"%d" % i)]) for i in range(1000)]


def test_kafka_python_admin_creates_describes_and_deletes_topics(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("adm", num_partitions=3, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    assert "adm" in admin.list_topics()
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "adm")])
    # kafka-python 3 reports the configs set on the topic (defaults are left out).
    retention = described["topic"]["adm"]["retention.ms"]
    assert retention["value"] == "3600000" and retention["config_source"] == "DYNAMIC_TOPIC_CONFIG", described
    admin.delete_topics(["adm"])
    assert "adm" not in admin.list_topics()
    admin.close()


def test_kafka_python_reassignment_and_election_apis_on_a_single_node(broker):
    """The cluster admin APIs answer a single node as Kafka answers a one-broker cluster:
    nothing is moving, the one replica (node 0) is the only assignment, every leader is
    the preferred one."""
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("placed", num_partitions=2, replication_factor=1)])
    assert admin.list_partition_reassignments() == {}
    results = admin.alter_partition_reassignments({
        TopicPartition("placed", 0): [0],  # what it has: accepted, nothing moves
        TopicPartition("placed", 1): [1],  # no broker 1
        TopicPartition("absent", 0): [0],
    })
    assert results[TopicPartition("placed", 0)] is None, results
    assert results[TopicPartition("placed", 1)].errno == 39, results  # INVALID_REPLICA_ASSIGNMENT
    assert results[TopicPartition("absent", 0)].errno == 3, results
    cancelled = admin.alter_partition_reassignments({TopicPartition("placed", 0): None})
    assert cancelled[TopicPartition("placed", 0)].errno == 85, cancelled  # NO_REASSIGNMENT_IN_PROGRESS
    response = admin.elect_leaders(0, {"placed": [0, 1]}, raise_errors=False)
    codes = {(r[0], p[0]): p[1] for r in response.replica_election_results for p in r[1]}
    assert codes == {("placed", 0): 84, ("placed", 1): 84}, codes  # ELECTION_NOT_NEEDED
    admin.close()
