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
