"""Issue 12 acceptance 5: scaling out. A 4th broker (not a controller voter) joins a
running 3-broker cluster; `sluice cluster reassign` moves every partition of a topic onto
it while an idempotent acks=all producer runs: nothing acknowledged is lost, the moves
complete, the removed replicas' logs are deleted and the new replicas hold the same bytes.
Then preferred-leader elections (confluent-kafka's AdminClient) hand leadership to the
new broker, and kafka-python sees no reassignment left."""
import json
import signal
import subprocess
import time

from confluent_kafka import ElectionType, TopicPartition as ConfluentPartition
from confluent_kafka.admin import NewTopic
from kafka import KafkaAdminClient

from cluster import KeepProducing, check_acknowledged, log_bytes, running_cluster  # noqa: F401 (the fixture)
from conftest import SLUICE

TOPIC = "moving"
PARTITIONS = 3
NEW = 4


def sluice_cluster(cluster, *args, timeout=180):
    result = subprocess.run([str(SLUICE), "cluster", *args, "--brokers", cluster.bootstrap],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"sluice cluster {args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_a_new_broker_takes_over_partitions_while_a_producer_runs(cluster, tmp_path):
    cluster.admin.create_topics(
        [NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(20)
    before = cluster.wait_for(lambda md: TOPIC in md.topics and all(
        len(p.isrs) == 3 for p in md.topics[TOPIC].partitions.values()), "the topic's ISRs").topics[TOPIC]
    producer = KeepProducing(cluster.bootstrap, TOPIC, PARTITIONS)
    producer.start()
    producer.wait_for_more(500)

    cluster.add_broker(NEW)
    producer.wait_for_more(200)
    # Partition 0 loses its leader, the others a follower; broker 4 is first (preferred).
    plan = {"version": 1, "partitions": []}
    removed = {}
    for index, partition in before.partitions.items():
        leaving = partition.leader if index == 0 else next(r for r in partition.replicas if r != partition.leader)
        removed[index] = leaving
        replicas = [NEW] + [r for r in partition.replicas if r != leaving]
        plan["partitions"].append({"topic": TOPIC, "partition": index, "replicas": replicas})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    started = time.time()
    output = sluice_cluster(cluster, "reassign", str(plan_file), "--wait", "120")
    print(output, f"moved in {time.time() - started:.1f} s")
    assert output.count("reassignment started") == PARTITIONS, output
    assert "reassignment complete" in output, output

    # Every broker's metadata shows the moves once it applied them (a broker deleting a
    # removed replica's log applies the change after the deletion).
    targets = {entry["partition"]: entry["replicas"] for entry in plan["partitions"]}
    after = cluster.wait_for(lambda md: all(
        p.replicas == targets[index] and len(p.isrs) == 3 for index, p in md.topics[TOPIC].partitions.items()),
        "the plan's replicas, all in sync").topics[TOPIC]
    for entry in plan["partitions"]:
        partition = after.partitions[entry["partition"]]
        assert partition.replicas == entry["replicas"], (partition.replicas, entry)
        assert sorted(partition.isrs) == sorted(entry["replicas"])
        assert partition.leader in entry["replicas"]
    assert after.partitions[0].leader != removed[0], "the removed leader handed over"
    producer.wait_for_more(300)

    status = sluice_cluster(cluster, "status")
    assert "under-replicated: 0, offline: 0, reassigning: 0" in status, status
    assert f"  {NEW}  {cluster.brokers[NEW].address}" in status, status
    kafka_python = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    assert kafka_python.list_partition_reassignments() == {}, "kafka-python sees no move left"
    kafka_python.close()

    # The removed replicas' logs are gone from their brokers.
    deadline = time.time() + 15
    leftovers = None
    while time.time() < deadline:
        leftovers = [(node, index) for index, node in removed.items()
                     if (cluster.brokers[node].data_dir / f"{TOPIC}-{index}").exists()]
        if not leftovers:
            break
        time.sleep(0.2)
    assert not leftovers, f"removed replicas still on disk: {leftovers}"

    # Preferred-leader election through confluent-kafka: broker 4 leads everything.
    elected = cluster.admin.elect_leaders(
        ElectionType.PREFERRED, [ConfluentPartition(TOPIC, p) for p in range(PARTITIONS)]).result(30)
    for topic_partition, error in elected.items():
        assert error is None or "ELECTION_NOT_NEEDED" in str(error), (topic_partition, error)
    cluster.wait_for(lambda md: all(p.leader == NEW for p in md.topics[TOPIC].partitions.values()),
                     "broker 4 leads every partition")
    producer.wait_for_more(300)

    # A generated plan spreads the partitions over all four brokers again, leaders too.
    proposed = json.loads(sluice_cluster(cluster, "plan", "--topic", TOPIC, "--to", "1,2,3,4"))
    assert [p["partition"] for p in proposed["partitions"]] == list(range(PARTITIONS))
    for entry in proposed["partitions"]:
        assert len(entry["replicas"]) == 3 == len(set(entry["replicas"])) and set(entry["replicas"]) <= {1, 2, 3, 4}
    assert len({entry["replicas"][0] for entry in proposed["partitions"]}) == PARTITIONS, "leaders spread"
    (tmp_path / "spread.json").write_text(json.dumps(proposed))
    assert "reassignment complete" in sluice_cluster(cluster, "reassign", str(tmp_path / "spread.json"), "--wait", "120")
    producer.wait_for_more(300)

    producer.finish()
    assert not producer.failed, producer.failed[:5]
    check_acknowledged(cluster.bootstrap, producer)

    time.sleep(2)
    cluster.stop(signal.SIGTERM)
    for entry in proposed["partitions"]:
        logs = {node: log_bytes(cluster.brokers[node], TOPIC, entry["partition"]) for node in entry["replicas"]}
        assert len(set(logs.values())) == 1, (
            f"p{entry['partition']}: replicas differ: { {n: len(b) for n, b in logs.items()} }")
        assert all(len(data) > 0 for data in logs.values())


def test_bad_reassignments_get_kafka_errors(cluster, tmp_path):
    """Unknown brokers, repeated brokers, unknown partitions and a cancellation of
    nothing are refused with Kafka's codes; the partitions stay as they were."""
    cluster.admin.create_topics([NewTopic("steady", 1, 3)])["steady"].result(20)
    cluster.wait_for(lambda md: "steady" in md.topics and md.topics["steady"].partitions[0].leader >= 0, "leader")
    cases = [
        ([{"topic": "steady", "partition": 0, "replicas": [1, 2, 9]}], [], "InvalidReplicaAssignment"),
        ([{"topic": "steady", "partition": 0, "replicas": [1, 1, 2]}], [], "InvalidReplicaAssignment"),
        ([{"topic": "steady", "partition": 7, "replicas": [1, 2, 3]}], [], "UnknownTopicOrPartition"),
        ([{"topic": "steady", "partition": 0, "replicas": [1, 2, 3]}], ["--cancel"], "NoReassignmentInProgress"),
    ]
    for partitions, flags, expected in cases:
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(json.dumps({"version": 1, "partitions": partitions}))
        result = subprocess.run([str(SLUICE), "cluster", "reassign", str(plan_file), *flags,
                                 "--brokers", cluster.bootstrap], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, result.stdout
        assert expected in result.stdout + result.stderr, (expected, result.stdout, result.stderr)
    state = cluster.metadata().topics["steady"].partitions[0]
    assert len(state.replicas) == 3 and len(state.isrs) == 3


def test_a_new_replica_starts_at_the_leaders_log_start_and_followers_follow_deletions(cluster, tmp_path):
    """Records deleted on the leader (DeleteRecords) are deleted on its followers too, and a
    replica moved to a broker that never held the partition starts its log at the
    leader's log start instead of fetching records that are gone."""
    from confluent_kafka import Producer

    from cluster import log_start

    cluster.admin.create_topics([NewTopic("trimmed", 1, replica_assignment=[[1, 2]],
                                          config={"segment.bytes": "16384"})])["trimmed"].result(20)
    cluster.wait_for(lambda md: "trimmed" in md.topics and len(md.topics["trimmed"].partitions[0].isrs) == 2,
                     "the topic's ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5, "log_level": 2})
    for i in range(3000):
        producer.produce("trimmed", b"%06d" % i + b"." * 100, partition=0)
    assert producer.flush(60) == 0
    deleted = cluster.admin.delete_records([ConfluentPartition("trimmed", 0, 2000)])
    for _, future in deleted.items():
        assert future.result(30).low_watermark == 2000

    def eventually(condition, what, timeout=15):
        deadline = time.time() + timeout
        while not condition():
            assert time.time() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    eventually(lambda: log_start(cluster.brokers[2], "trimmed", 0) == 2000, "the follower to delete below 2000")
    assert log_start(cluster.brokers[1], "trimmed", 0) == 2000

    plan_file = tmp_path / "trim-plan.json"
    plan_file.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "trimmed", "partition": 0, "replicas": [1, 3]}]}))
    output = sluice_cluster(cluster, "reassign", str(plan_file), "--wait", "60")
    assert "reassignment complete" in output, output
    eventually(lambda: log_start(cluster.brokers[3], "trimmed", 0) == 2000, "broker 3 to start at 2000")
    assert "starting the log again there" in cluster.brokers[3].log()
    for i in range(3000, 3100):
        producer.produce("trimmed", b"%06d" % i, partition=0)
    assert producer.flush(60) == 0
    cluster.stop(signal.SIGTERM)
    assert log_bytes(cluster.brokers[1], "trimmed", 0).endswith(log_bytes(cluster.brokers[3], "trimmed", 0))
    assert b"003099" in log_bytes(cluster.brokers[3], "trimmed", 0)


def test_a_data_directory_of_another_node_or_cluster_is_refused(cluster):
    """meta.properties ties a data directory to its node and its cluster: started as
    another node, or against a cluster other than the one it joined, the broker stops by
    itself with a clear error (and a failing exit status) and its partitions are left
    alone."""
    from conftest import Broker

    joined = cluster.add_broker(NEW)
    properties = joined.data_dir / "meta.properties"
    deadline = time.time() + 10
    while "cluster.id=" not in properties.read_text() and time.time() < deadline:
        time.sleep(0.1)
    text = properties.read_text()
    assert f"node.id={NEW}" in text and "cluster.id=" in text, text
    joined.stop(signal.SIGTERM)
    del cluster.brokers[NEW]

    def refused(*flags, expected):
        broker = Broker(joined.data_dir, *flags, "--controller-quorum-voters", cluster.voters, "--cores", "1")
        try:
            broker.start()
        except AssertionError:
            pass  # it may stop before it listens
        status = broker.process.wait(30)
        assert expected in broker.log(), broker.log_tail()
        return status

    assert refused("--node-id", "5", expected=f"belongs to node {NEW}") != 0
    properties.write_text(text.replace("cluster.id=", "cluster.id=another-"))
    assert refused("--node-id", str(NEW), expected="refused by the cluster") != 0
    assert sorted(cluster.metadata().brokers) == [1, 2, 3], "the refused broker never became live"

    # A new broker given a voters list that differs from the controllers' (one voter's
    # address changed, not the active one's, so the broker reaches the active one).
    from cluster import active_controller
    from conftest import free_port
    active = active_controller(cluster)
    other = next(node for node in (1, 2, 3) if node != active)
    wrong = cluster.voters.replace(f"{other}@127.0.0.1:{cluster.controller_ports[other]}",
                                   f"{other}@127.0.0.1:{free_port()}")
    stranger = Broker(joined.data_dir.parent.parent / "node-6" / "data", "--node-id", "6",
                      "--controller-quorum-voters", wrong, "--cores", "1")
    stranger.data_dir.parent.mkdir(parents=True)
    try:
        stranger.start()
    except AssertionError:
        pass
    assert stranger.process.wait(30) != 0
    assert "refused by the cluster" in stranger.log() and "voters" in stranger.log(), stranger.log_tail()
