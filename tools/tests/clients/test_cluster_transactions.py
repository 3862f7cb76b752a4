"""Issue 13 acceptance 5, the cluster part: a transactional producer keeps committing
transactions across partitions led by different brokers of a 3-node cluster while the
broker coordinating its transactional id (the leader of the id's `__transaction_state`
partition) is SIGKILLed mid-transaction. Every transaction is then either wholly visible
to read_committed consumers or not at all, and every one whose commit was acknowledged
is visible."""
import signal
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from cluster import running_cluster  # noqa: F401 (the fixture)

TOPIC, PARTITIONS, PER_TRANSACTION = "ledger", 3, 12
TRANSACTIONAL_ID = "ledger-writer"


def java_hash_partition(key, partitions):
    """Kafka's placement of a key on an internal topic (String.hashCode, non-negative)."""
    h = 0
    for char in key:  # UTF-16 code units: one per character for the ASCII ids used here
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    return 0 if h == -(1 << 31) else abs(h) % partitions


def run_transaction(producer, number):
    """One transaction of PER_TRANSACTION records over every partition; True if its commit
    was acknowledged, False if it was aborted (or its outcome is unknown: then the check
    only asks that it is all or nothing)."""
    producer.begin_transaction()
    for i in range(PER_TRANSACTION):
        producer.produce(TOPIC, value=f"{number}:{i}", partition=i % PARTITIONS)
    try:
        producer.commit_transaction(60)
        return True
    except KafkaException as raised:
        if raised.args[0].txn_requires_abort():
            producer.abort_transaction(60)
        return False


def test_a_transaction_commits_or_aborts_whole_when_its_coordinator_dies(cluster):
    cluster.admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(20)
    cluster.wait_for(lambda md: TOPIC in md.topics and all(p.leader >= 0 for p in md.topics[TOPIC].partitions.values()),
                     "the topic's leaders")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": TRANSACTIONAL_ID,
                         "transaction.timeout.ms": 20000, "log_level": 2})
    producer.init_transactions(60)
    acknowledged, attempted = set(), 0
    for number in range(10):
        attempted += 1
        if run_transaction(producer, number):
            acknowledged.add(number)
    state_partition = java_hash_partition(TRANSACTIONAL_ID, 50)
    coordinator = cluster.partition("__transaction_state", state_partition).leader
    leaders = {p: cluster.partition(TOPIC, p).leader for p in range(PARTITIONS)}
    assert len(set(leaders.values())) > 1 or coordinator not in leaders.values(), (
        "markers must cross brokers for the test to mean anything", leaders, coordinator)

    # Mid-transaction: records sent, commit not yet asked for.
    producer.begin_transaction()
    number = attempted
    attempted += 1
    for i in range(PER_TRANSACTION):
        producer.produce(TOPIC, value=f"{number}:{i}", partition=i % PARTITIONS)
    producer.flush(30)
    cluster.brokers[coordinator].stop(signal.SIGKILL)
    try:
        producer.commit_transaction(60)
        acknowledged.add(number)
    except KafkaException as raised:
        if raised.args[0].txn_requires_abort():
            producer.abort_transaction(60)
    cluster.brokers[coordinator].start()
    for number in range(attempted, attempted + 10):
        attempted += 1
        if run_transaction(producer, number):
            acknowledged.add(number)
    assert len(acknowledged) >= 15, f"only {sorted(acknowledged)} of {attempted} committed"

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "ledger-reader",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False, "log_level": 2})
    consumer.subscribe([TOPIC])
    seen, deadline, quiet_since = {}, time.time() + 60, None
    expected = len(acknowledged) * PER_TRANSACTION
    while time.time() < deadline:
        message = consumer.poll(0.2)
        if message is None or message.error():
            if sum(len(v) for v in seen.values()) >= expected:
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since > 2:
                    break
            continue
        quiet_since = None
        transaction, index = map(int, message.value().decode().split(":"))
        assert index not in seen.setdefault(transaction, set()), f"record {transaction}:{index} twice"
        seen[transaction].add(index)
    consumer.close()
    halves = {t: sorted(i) for t, i in seen.items() if len(i) != PER_TRANSACTION}
    assert not halves, f"transactions seen in part: {halves}"
    missing = acknowledged - set(seen)
    assert not missing, f"acknowledged transactions not visible: {sorted(missing)}"
