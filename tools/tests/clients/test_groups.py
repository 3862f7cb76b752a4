"""Consumer groups against a real broker: partitions split among a group's members,
committed offsets that survive broker restarts, and kafka-python's group consumer."""
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

PARTITIONS = 6
MESSAGES = 60_000
# Shorter than Kafka's 3 s so that the tests do not wait long; members started together
# still land in one rebalance.
GROUP_FLAGS = ("--cores", "2", "--group-initial-rebalance-delay-ms", "1000")
WORKER = Path(__file__).with_name("group_worker.py")


def produce(address, topic, count, start=0):
    admin = AdminClient({"bootstrap.servers": address})
    if topic not in admin.list_topics(timeout=10).topics:
        for future in admin.create_topics([NewTopic(topic, PARTITIONS, 1)]).values():
            future.result(30)
    producer = Producer({"bootstrap.servers": address, "linger.ms": 5, "acks": "all"})
    for i in range(start, start + count):
        producer.produce(topic, key=b"%d" % i, value=b"v%d" % i)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def group_consumer(address, group, **extra):
    return Consumer({"bootstrap.servers": address, "group.id": group, "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000, **extra})


def consume_in_group(address, topic, group, members, expected, seconds=60):
    """Runs `members` consumers in one group until `expected` messages arrived in all;
    each commits after processing. Returns (values per member, partitions per member)."""
    values = [[] for _ in range(members)]
    assigned = [set() for _ in range(members)]

    def run(n):
        consumer = group_consumer(address, group)
        consumer.subscribe([topic], on_assign=lambda c, parts: assigned[n].update(p.partition for p in parts))
        deadline = time.time() + seconds
        while time.time() < deadline and sum(len(v) for v in values) < expected:
            batch = consumer.consume(500, 0.5)
            for m in batch:
                assert m.error() is None, m.error()
                values[n].append(m.value())
            if batch:
                consumer.commit(asynchronous=False)
        consumer.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return values, assigned


def test_three_members_split_six_partitions_and_consume_everything_once(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "orders", MESSAGES)
    values, assigned = consume_in_group(broker.address, "orders", "billing", 3, MESSAGES)
    assert sorted(len(a) for a in assigned) == [2, 2, 2], assigned
    assert set().union(*assigned) == set(range(PARTITIONS))
    everything = [v for member in values for v in member]
    assert len(everything) == MESSAGES and len(set(everything)) == MESSAGES, "each message exactly once"

    # The committed offsets are the ends of the partitions.
    checker = group_consumer(broker.address, "billing")
    committed = checker.committed([TopicPartition("orders", p) for p in range(PARTITIONS)], timeout=10)
    ends = [checker.get_watermark_offsets(TopicPartition("orders", p), timeout=10)[1] for p in range(PARTITIONS)]
    checker.close()
    assert [c.offset for c in committed] == ends


def test_committed_offsets_survive_sigkill_and_sigterm_restarts(start_broker, tmp_path):
    data_dir = tmp_path / "group-data"
    broker = start_broker(*GROUP_FLAGS, data_dir=data_dir)
    produce(broker.address, "events", 3000)
    first, _ = consume_in_group(broker.address, "events", "audit", 1, 3000)
    assert len(first[0]) == 3000
    for sig in (signal.SIGKILL, signal.SIGTERM):
        assert broker.stop(sig) is not None
        broker.process = None
        broker.start()
        produce(broker.address, "events", 1000, start=3000 if sig == signal.SIGKILL else 4000)
        resumed, _ = consume_in_group(broker.address, "events", "audit", 1, 1000)
        # Only what came after the commit: the group resumes where it left off.
        assert len(resumed[0]) == 1000, f"after {sig!r}: {len(resumed[0])} messages"
        start = 3000 if sig == signal.SIGKILL else 4000
        assert sorted(resumed[0]) == sorted(b"v%d" % i for i in range(start, start + 1000))


def test_kafka_python_group_consumer_joins_consumes_commits_and_leaves(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "kp-group", 500)
    consumer = KafkaConsumer("kp-group", bootstrap_servers=broker.address, group_id="kp",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=15000)
    got = []
    for message in consumer:
        got.append(message.value)
        if len(got) == 500:
            break
    consumer.commit()
    assert sorted(got) == sorted(b"v%d" % i for i in range(500))
    assert len(consumer.assignment()) == PARTITIONS
    consumer.close()  # sends LeaveGroup
    checker = KafkaConsumer(bootstrap_servers=broker.address, group_id="kp", enable_auto_commit=False)
    total = sum(checker.committed(KpTopicPartition("kp-group", p)) or 0 for p in range(PARTITIONS))
    checker.close()
    assert total == 500



class Worker:
    """A group member process (group_worker.py) whose events are collected with the time
    they were seen."""

    def __init__(self, address, topic, group, *flags):
        self.process = subprocess.Popen([sys.executable, str(WORKER), address, topic, group, *flags],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.events.append((time.time(), json.loads(line)))

    def of(self, kind):
        return [(at, event[kind]) for at, event in list(self.events) if kind in event]

    def messages(self):
        return [m for _, m in self.of("msg")]

    def assignment(self):
        """Current partitions, from the assign/revoke callbacks (incremental or eager)."""
        owned = set()
        for _, event in list(self.events):
            if "assigned" in event:
                owned |= set(event["assigned"])
            if "revoked" in event:
                owned -= set(event["revoked"])
        return owned

    def wait_for(self, condition, seconds, what):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if condition():
                return
            time.sleep(0.05)
        lifecycle = [e for _, e in self.events if "msg" not in e and "committed" not in e]
        raise AssertionError(f"timed out waiting for {what}: {lifecycle[-10:]}, exit {self.process.poll()}")

    def stop(self, sig=signal.SIGTERM):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(30)
        self.reader.join(5)


def test_a_killed_member_loses_its_partitions_to_the_others_and_nothing_is_lost(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "jobs", MESSAGES)
    workers = [Worker(broker.address, "jobs", "crunch", "--throttle-ms", "20", "--idle", "8") for _ in range(3)]
    try:
        for worker in workers:
            worker.wait_for(lambda w=worker: len(w.assignment()) == 2, 30, "a 2/2/2 split")
        victim, survivors = workers[0], workers[1:]
        victim.wait_for(lambda: len(victim.messages()) >= 1000, 30, "the victim to make progress")
        lost = victim.assignment()
        victim.stop(signal.SIGKILL)  # no LeaveGroup: only the session timeout tells
        killed_at = time.time()
        survivors[0].wait_for(lambda: set().union(*(s.assignment() for s in survivors)) == set(range(PARTITIONS)),
                              30, "the victim's partitions to move")
        moved_after = time.time() - killed_at
        print(f"the killed member's partitions moved {moved_after:.1f} s after the kill")
        assert moved_after < 6 + 5, f"partitions moved {moved_after:.1f} s after the kill (session timeout 6 s)"
        for survivor in survivors:
            survivor.wait_for(lambda s=survivor: s.process.poll() is not None, 90, "the survivors to finish")
    finally:
        for worker in workers:
            worker.stop(signal.SIGKILL)
    everything = [m for w in workers for m in w.messages()]
    assert set(everything) == {"v%d" % i for i in range(MESSAGES)}, "at least once: nothing lost"
    # Duplicates come only from the victim's tail after its last successful commit.
    events = [e for _, e in victim.events]
    last_commit = max(i for i, e in enumerate(events) if "committed" in e)
    uncommitted = {e["msg"] for e in events[last_commit:] if "msg" in e}
    survivors_saw = [m for w in survivors for m in w.messages()]
    duplicates = {m for m in victim.messages() if m in set(survivors_saw)}
    assert duplicates <= uncommitted, f"{len(duplicates - uncommitted)} duplicates were committed by the victim"
    assert len(survivors_saw) == len(set(survivors_saw)), "the survivors never read a message twice"
    assert lost, "the victim owned partitions"


def test_cooperative_sticky_newcomer_revokes_only_what_moves(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "coop", 600)
    flags = ("--strategy", "cooperative-sticky", "--seconds", "40", "--idle", "1000")
    first = [Worker(broker.address, "coop", "sticky", *flags) for _ in range(2)]
    newcomer = None
    try:
        for worker in first:
            worker.wait_for(lambda w=worker: len(w.assignment()) == 3, 30, "a 3/3 split")
        before = [w.assignment() for w in first]
        revokes_before = [len(w.of("revoked")) for w in first]
        newcomer = Worker(broker.address, "coop", "sticky", *flags)
        newcomer.wait_for(lambda: len(newcomer.assignment()) == 2, 30, "the newcomer's partitions")
        for worker in first:
            worker.wait_for(lambda w=worker: len(w.assignment()) == 2, 30, "the old members to give one each")
        taken = newcomer.assignment()
        for worker, owned_before, seen in zip(first, before, revokes_before):
            revoked = set().union(*(set(r) for _, r in worker.of("revoked")[seen:]))
            assert revoked <= taken, f"revoked {revoked}, but only {taken} moved"
            assert worker.assignment() == owned_before - revoked, "the partitions that stay were never revoked"
    finally:
        for worker in first + ([newcomer] if newcomer else []):
            worker.stop(signal.SIGKILL)


def test_a_static_member_restarting_within_its_session_gets_its_partitions_back_without_a_rebalance(start_broker):
    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "static", 600)
    flags = ("--session-ms", "15000", "--seconds", "60", "--idle", "1000")
    steady = Worker(broker.address, "static", "fleet", "--instance", "worker-1", *flags)
    restarting = Worker(broker.address, "static", "fleet", "--instance", "worker-2", *flags)
    replacement = None
    try:
        for worker in (steady, restarting):
            worker.wait_for(lambda w=worker: len(w.assignment()) == 3, 30, "a 3/3 split")
        owned = restarting.assignment()
        steady_events = len(steady.events)
        restarting.stop(signal.SIGKILL)
        replacement = Worker(broker.address, "static", "fleet", "--instance", "worker-2", *flags)
        replacement.wait_for(lambda: replacement.assignment() == owned, 10, "the same partitions back")
        time.sleep(3)  # long enough for a rebalance to have reached the steady member
        later = [e for _, e in steady.events[steady_events:]]
        assert not any("assigned" in e or "revoked" in e for e in later), f"the steady member rebalanced: {later}"
    finally:
        for worker in (steady, restarting) + ((replacement,) if replacement else ()):
            worker.stop(signal.SIGKILL)


def test_admin_clients_list_describe_delete_groups_and_their_offsets(start_broker):
    from confluent_kafka import ConsumerGroupState
    from kafka import KafkaAdminClient
    from kafka.errors import NoError

    broker = start_broker(*GROUP_FLAGS)
    produce(broker.address, "admin-topic", 60)
    consumer = group_consumer(broker.address, "admin-g", **{"client.id": "describer"})
    consumer.subscribe(["admin-topic"])
    got = 0
    deadline = time.time() + 30
    while got < 60 and time.time() < deadline:
        got += len(consumer.consume(100, 0.5))
    consumer.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": broker.address})

    listed = admin.list_consumer_groups().result(30)
    assert [(g.group_id, g.state) for g in listed.valid] == [("admin-g", ConsumerGroupState.STABLE)]
    described = admin.describe_consumer_groups(["admin-g"])["admin-g"].result(30)
    assert described.state == ConsumerGroupState.STABLE
    assert described.partition_assignor == "range"
    [member] = described.members
    assert member.client_id == "describer" and member.host == "/127.0.0.1"
    assert sorted(tp.partition for tp in member.assignment.topic_partitions) == list(range(PARTITIONS))

    kp_admin = KafkaAdminClient(bootstrap_servers=broker.address)
    # A stable group's subscribed topic keeps its offsets; a group with members stays.
    refused = kp_admin.delete_group_offsets("admin-g", [KpTopicPartition("admin-topic", 0)])
    assert refused[KpTopicPartition("admin-topic", 0)].__name__ == "GroupSubscribedToTopicError"
    assert kp_admin.delete_groups(["admin-g"]) == {"admin-g": "NonEmptyGroupError"}

    consumer.close()
    deleted = kp_admin.delete_group_offsets("admin-g", [KpTopicPartition("admin-topic", 0)])
    assert deleted[KpTopicPartition("admin-topic", 0)] is NoError
    checker = group_consumer(broker.address, "admin-g")
    committed = checker.committed([TopicPartition("admin-topic", p) for p in range(PARTITIONS)], timeout=10)
    checker.close()
    assert committed[0].offset < 0 and all(c.offset >= 0 for c in committed[1:])
    assert kp_admin.delete_groups(["admin-g"]) == {"admin-g": "OK"}
    assert admin.list_consumer_groups().result(30).valid == []
    assert kp_admin.delete_groups(["admin-g"]) == {"admin-g": "GroupIdNotFoundError"}
    kp_admin.close()
