"""The admin socket, `sluice admin` and the Prometheus endpoint against a real broker with
topics and data: every command's figures, runtime settings that take effect, bad input that
must not hurt the broker, and the exposition parsed by the Prometheus client library."""
import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from conftest import SLUICE, free_port

TOPIC = "orders"
RECORDS_PER_PARTITION = {0: 10, 1: 20, 2: 30}


class Admin:
    """A broker's admin socket, spoken to line by line."""

    def __init__(self, broker):
        self.path = Path(broker.data_dir) / "admin.sock"

    def connect(self):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(30)
        conn.connect(str(self.path))
        return conn

    def send_raw(self, data):
        """Sends bytes on a fresh connection and returns the reply lines until it closes
        or one reply per newline sent has come."""
        with self.connect() as conn:
            conn.sendall(data)
            return read_replies(conn, data.count(b"\n"))

    def __call__(self, **request):
        (reply,) = self.send_raw(json.dumps(request).encode() + b"\n")
        return reply


def read_replies(conn, expected):
    buffered, replies = b"", []
    while len(replies) < expected:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            replies.append(json.loads(line))
    return replies


def sluice_admin(broker, *args, check=True):
    result = subprocess.run([str(SLUICE), "admin", "--data-dir", str(broker.data_dir), *args], capture_output=True,
                            timeout=120)
    if check:
        assert result.returncode == 0, result.stderr.decode()
    return result


def produce(broker, counts, topic=TOPIC):
    producer = Producer({"bootstrap.servers": broker.address, "linger.ms": 0})
    for partition, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=f"record-{partition}-{i}".encode(), partition=partition)
        producer.flush(30)
    assert producer.flush(30) == 0


@pytest.fixture
def loaded_broker(start_broker):
    """Two shards, metrics on a free port, topic `orders` with 10/20/30 records in
    partitions 0/1/2."""
    broker = start_broker("--cores", "2", "--metrics-listen", f"127.0.0.1:{free_port()}")
    broker.metrics_address = broker.flags[broker.flags.index("--metrics-listen") + 1]
    created = subprocess.run([str(SLUICE), "topic", "create", TOPIC, "-p", "3", "--brokers", broker.address],
                             capture_output=True, timeout=60)
    assert created.returncode == 0, created.stderr.decode()
    produce(broker, RECORDS_PER_PARTITION)
    return broker


def partitions_of(reply, topic=TOPIC):
    return {p["partition"]: p for p in reply["partitions"] if p["topic"] == topic}


def api_count(metrics, api):
    return next((r["latency"]["count"] for r in metrics["requests"] if r["api"] == api), 0)


def test_status_reports_version_shards_offsets_and_connections(loaded_broker):
    status = Admin(loaded_broker)(command="status")
    assert status["ok"] is True
    version = subprocess.run([str(SLUICE), "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert status["version"] == version
    assert status["uptime_ms"] > 0
    assert [s["shard"] for s in status["shards"]] == [0, 1]
    ends = {}
    for shard in status["shards"]:
        ends.update(shard["log_end_offsets"])
        assert shard["partitions"] == len(shard["log_end_offsets"])
    assert {name: end for name, end in ends.items() if name.startswith(TOPIC + "-")} == {
        f"{TOPIC}-{p}": n for p, n in RECORDS_PER_PARTITION.items()}
    assert status["partitions"] == sum(s["partitions"] for s in status["shards"])
    assert status["size_bytes"] == sum(s["size_bytes"] for s in status["shards"]) > 0
    assert status["connections_accepted"] >= 2, "topic create and the producer connected"
    assert status["connections_open"] == sum(s["connections_open"] for s in status["shards"])


def test_partitions_report_owner_sizes_segments_and_offsets(loaded_broker):
    reply = Admin(loaded_broker)(command="partitions")
    orders = partitions_of(reply)
    assert sorted(orders) == [0, 1, 2]
    for partition, count in RECORDS_PER_PARTITION.items():
        p = orders[partition]
        assert (p["log_start_offset"], p["log_end_offset"], p["high_watermark"]) == (0, count, count)
        assert p["segments"] == 1 and p["size_bytes"] > 0 and p["shard"] in (0, 1)
    assert {p["shard"] for p in orders.values()} == {0, 1}, "partitions are spread over both shards"
    # The same partition placement as status reports.
    status = Admin(loaded_broker)(command="status")
    for p in orders.values():
        assert f"{TOPIC}-{p['partition']}" in status["shards"][p["shard"]]["log_end_offsets"]


def test_metrics_count_requests_per_api_fsyncs_and_cross_shard_calls(loaded_broker):
    admin = Admin(loaded_broker)
    before = admin(command="metrics")
    assert before["fsync"]["count"] > 0, "every-append fsyncs each produce"
    produce(loaded_broker, {0: 5, 1: 5, 2: 5})
    consumed = subprocess.run([str(SLUICE), "consume", TOPIC, "-e", "--brokers", loaded_broker.address],
                              capture_output=True, timeout=60)
    assert consumed.returncode == 0 and len(consumed.stdout.splitlines()) == 75
    after = admin(command="metrics")
    assert api_count(after, "Produce") >= api_count(before, "Produce") + 3
    assert api_count(after, "Fetch") > api_count(before, "Fetch")
    assert after["fsync"]["count"] >= before["fsync"]["count"] + 3
    for summary in [r["latency"] for r in after["requests"]] + [after["fsync"]]:
        assert 0 < summary["p50_us"] <= summary["p90_us"] <= summary["p99_us"] <= summary["p999_us"]
        assert summary["p999_us"] <= summary["max_us"] * 1.001
    shards = after["shards"]
    assert [s["shard"] for s in shards] == [0, 1]
    assert all(s["busy_us"] > 0 for s in shards)
    assert sum(s["requests"] for s in shards) == sum(r["latency"]["count"] for r in after["requests"])
    assert sum(s["fsyncs"] for s in shards) == after["fsync"]["count"]
    # With partitions on both shards, requests landing on one shard route some calls out.
    assert sum(s["calls_routed_out"] for s in shards) == sum(s["calls_served_for_others"] for s in shards) > 0


def test_config_get_and_set_change_the_running_broker(loaded_broker):
    admin = Admin(loaded_broker)
    assert admin(command="config", action="get") == {"ok": True, "config": {"log-level": "info", "flush": "every-append"}}
    assert admin(command="config", action="get", name="flush") == {"ok": True, "config": {"flush": "every-append"}}

    assert admin(command="config", action="set", name="log-level", value="debug")["config"] == {"log-level": "debug"}
    assert admin(command="config", action="get", name="log-level")["config"] == {"log-level": "debug"}
    produce(loaded_broker, {0: 1})
    assert " DEBUG " in loaded_broker.log(), "debug lines appear once the level is debug"
    refused = admin(command="config", action="set", name="log-level", value="info,sluice_net=loudest")
    assert refused["ok"] is False and "log-level" in refused["error"]
    assert admin(command="config", action="set", name="log-level", value="info")["ok"] is True

    # never: produces are acknowledged without an fsync.
    assert admin(command="config", action="set", name="flush", value="never")["config"] == {"flush": "never"}
    fsyncs = admin(command="metrics")["fsync"]["count"]
    produce(loaded_broker, {1: 10})
    assert admin(command="metrics")["fsync"]["count"] == fsyncs
    orders = partitions_of(admin(command="partitions"))
    assert orders[1]["high_watermark"] == orders[1]["log_end_offset"] == 20 + 10

    # Back to every-append: each produce fsyncs again and nothing visible disappears.
    assert admin(command="config", action="set", name="flush", value="every-append")["ok"] is True
    assert partitions_of(admin(command="partitions"))[1]["high_watermark"] == 30
    produce(loaded_broker, {1: 1})
    assert admin(command="metrics")["fsync"]["count"] > fsyncs
    assert admin(command="config", action="set", name="flush", value="ms:50")["config"] == {"flush": "ms:50"}

    for name, value, reason in [("flush", "sometimes", "unknown flush policy"), ("flush", "bytes:x", "bytes:x"),
                                ("colour", "blue", "unknown variant `colour`")]:
        refused = admin(command="config", action="set", name=name, value=value)
        assert refused["ok"] is False and reason in refused["error"], refused
    assert admin(command="config", action="get", name="flush")["config"] == {"flush": "ms:50"}, "refusals change nothing"


def test_flush_and_roll_act_on_every_partition_or_the_one_named(loaded_broker):
    admin = Admin(loaded_broker)
    total = admin(command="status")["partitions"]
    assert admin(command="flush") == {"ok": True, "flushed": total}

    rolled = admin(command="roll", topic=TOPIC, partition=1)
    assert rolled == {"ok": True, "rolled": 1, "skipped_empty": 0}
    assert {p: v["segments"] for p, v in partitions_of(admin(command="partitions")).items()} == {0: 1, 1: 2, 2: 1}

    rolled = admin(command="roll")
    assert rolled["ok"] is True and rolled["rolled"] + rolled["skipped_empty"] == total
    assert rolled["rolled"] == 2, "partition 1's new active segment is empty and is left alone"
    assert {p: v["segments"] for p, v in partitions_of(admin(command="partitions")).items()} == {0: 2, 1: 2, 2: 2}

    produce(loaded_broker, {0: 3})
    assert partitions_of(admin(command="partitions"))[0]["log_end_offset"] == 13, "appends go on after a roll"
    assert admin(command="roll", topic=TOPIC) == {"ok": True, "rolled": 1, "skipped_empty": 2}
    missing = admin(command="roll", topic="no-such-topic")
    assert missing == {"ok": False, "error": "no partition matches"}


def test_shutdown_replies_then_stops_cleanly(loaded_broker):
    data_dir = Path(loaded_broker.data_dir)
    assert Admin(loaded_broker)(command="shutdown") == {"ok": True, "stopping": True}
    assert loaded_broker.process.wait(30) == 0
    assert (data_dir / ".clean-shutdown").exists()
    assert not (data_dir / "admin.sock").exists(), "the socket is removed at clean shutdown"


def test_bad_input_gets_errors_and_the_broker_keeps_serving(loaded_broker):
    admin = Admin(loaded_broker)
    replies = admin.send_raw(
        b'{"command":\n'                                  # malformed JSON
        b'{"command":"reboot"}\n'                         # unknown command
        b'{"verb":"status"}\n'                            # no command
        b'{"command":"config","action":"set","name":"flush"}\n'  # missing value
        b'{"command":"roll","partition":1}\n'             # partition without topic
        b'\x00\xff\xfe\x01garbage\x80\n'                  # binary garbage
        b'\n'                                             # empty line
        b'{"command":"status"}\n')                        # still served on the same connection
    assert len(replies) == 8
    for reply, reason in zip(replies, ["EOF", "unknown variant `reboot`", "missing field `command`",
                                       "missing field `value`", "needs its topic", "expected value", "EOF"]):
        assert reply["ok"] is False and reason in reply["error"], reply
    assert replies[-1]["ok"] is True and replies[-1]["partitions"] >= 3

    # An over-long line is refused and the connection closed.
    with admin.connect() as conn:
        try:
            conn.sendall(b'{"command":"status","pad":"' + b"x" * (70 << 10) + b'"}\n')
        except (BrokenPipeError, ConnectionResetError):
            pass  # the broker may close before the line's end arrives; its reply is still there
        reply = read_replies(conn, 1)
        assert len(reply) == 1 and reply[0]["ok"] is False and "longer than 65536" in reply[0]["error"]
        assert conn.recv(1) == b"", "closed after the error"

    # A client that vanishes mid-line, one that connects and says nothing, one that resets.
    with admin.connect() as conn:
        conn.sendall(b'{"command":"sta')
    admin.connect().close()
    with admin.connect() as conn:
        conn.sendall(b'{"command":"metrics"}\n')  # leaves before reading its reply

    # A client that half-closes mid-line is told why.
    with admin.connect() as conn:
        conn.sendall(b'{"command":"sta')
        conn.shutdown(socket.SHUT_WR)
        (reply,) = read_replies(conn, 1)
        assert reply["ok"] is False and "middle of a request line" in reply["error"]

    assert loaded_broker.process.poll() is None
    assert admin(command="status")["ok"] is True
    produce(loaded_broker, {2: 5})
    consumed = subprocess.run([str(SLUICE), "consume", TOPIC, "-p", "2", "-e", "--brokers", loaded_broker.address],
                              capture_output=True, timeout=60)
    assert len(consumed.stdout.splitlines()) == 35, "Kafka clients are served as before"


def test_socket_is_private_and_a_stale_one_is_replaced(start_broker, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(data_dir / "admin.sock"))  # left behind as by a crash: nobody listens
    stale.close()
    broker = start_broker("--cores", "1", data_dir=data_dir)
    mode = os.stat(data_dir / "admin.sock").st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert Admin(broker)(command="status")["ok"] is True
    assert not list(data_dir.glob("admin.sock.*")), "no temporary socket left"


def test_a_file_that_is_not_a_socket_is_never_removed(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    result = subprocess.run(
        [str(SLUICE), "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "data"),
         "--cores", "1", "--admin-socket", str(precious)], capture_output=True, timeout=60)
    assert result.returncode != 0 and b"is not a socket" in result.stderr
    assert precious.read_text() == "keep me"


def test_admin_socket_path_comes_from_the_flag(start_broker, tmp_path):
    path = tmp_path / "elsewhere.sock"
    broker = start_broker("--cores", "1", "--admin-socket", str(path))
    assert not (Path(broker.data_dir) / "admin.sock").exists()
    result = subprocess.run([str(SLUICE), "admin", "--socket", str(path), "--json", "config", "get", "flush"],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == {"ok": True, "config": {"flush": "every-append"}}


def test_admin_cli_prints_tables_json_and_errors(loaded_broker):
    status = sluice_admin(loaded_broker, "status").stdout.decode().splitlines()
    assert status[0].startswith("sluice ") and "partitions" in status[1]
    assert status[2].split()[:3] == ["SHARD", "PARTITIONS", "BYTES"]
    assert [line.split()[0] for line in status[3:]] == ["0", "1"]

    table = sluice_admin(loaded_broker, "partitions").stdout.decode().splitlines()
    assert table[0].split() == ["TOPIC", "PARTITION", "SHARD", "BYTES", "SEGMENTS", "LOG-START", "LOG-END",
                                "HIGH-WATERMARK"]
    rows = {int(cells[1]): cells for cells in (line.split() for line in table[1:]) if cells[0] == TOPIC}
    assert {p: int(cells[6]) for p, cells in rows.items()} == RECORDS_PER_PARTITION

    metrics = sluice_admin(loaded_broker, "metrics").stdout.decode()
    assert [line.split()[0] for line in metrics.splitlines() if line.startswith("Produce")] == ["Produce"]
    assert "FSYNCS" in metrics and "fsync" in metrics

    raw = json.loads(sluice_admin(loaded_broker, "--json", "metrics").stdout)
    assert raw["ok"] is True and api_count(raw, "Produce") > 0

    assert sluice_admin(loaded_broker, "config", "set", "flush", "bytes:1048576").returncode == 0
    config = sluice_admin(loaded_broker, "config", "get").stdout.decode().splitlines()
    assert config[0].split() == ["NAME", "VALUE"] and ["flush", "bytes:1048576"] in [c.split() for c in config]
    assert sluice_admin(loaded_broker, "flush").stdout.decode().startswith("flushed ")
    assert sluice_admin(loaded_broker, "roll", "--topic", TOPIC, "--partition", "0").stdout.decode().startswith(
        "rolled 1 partitions")

    refused = sluice_admin(loaded_broker, "config", "set", "flush", "sometimes", check=False)
    assert refused.returncode != 0 and b"unknown flush policy" in refused.stderr and refused.stdout == b""
    refused_json = sluice_admin(loaded_broker, "--json", "roll", "--topic", "nope", check=False)
    assert refused_json.returncode != 0 and json.loads(refused_json.stdout)["ok"] is False
    assert b"no partition matches" in refused_json.stderr

    nobody = subprocess.run([str(SLUICE), "admin", "--data-dir", str(Path(loaded_broker.data_dir) / "none"), "status"],
                            capture_output=True, timeout=60)
    assert nobody.returncode != 0 and b"cannot reach the admin socket" in nobody.stderr


def scrape(broker, path="/metrics"):
    return subprocess.run(["curl", "-s", "-w", "\n%{http_code} %{content_type}", f"http://{broker.metrics_address}{path}"],
                          capture_output=True, text=True, timeout=30).stdout


def test_prometheus_exposition_parses_and_agrees_with_the_admin_socket(loaded_broker):
    admin = Admin(loaded_broker)
    output = scrape(loaded_broker)
    text, status_line = output.rsplit("\n", 1)
    assert status_line.startswith("200 text/plain; version=0.0.4")
    metrics = admin(command="metrics")  # no Kafka traffic in between: the counts must agree

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["sluice_requests"].type == "counter"
    assert families["sluice_request_latency_seconds"].type == "summary"
    assert families["sluice_fsync_latency_seconds"].type == "summary"
    assert families["sluice_partition_log_end_offset"].type == "gauge"
    for family in families.values():
        assert family.documentation, f"{family.name} has HELP"
    samples = {}
    for family in families.values():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def total(name, **labels):
        return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

    assert total("sluice_requests_total", api="Produce") == api_count(metrics, "Produce") > 0
    assert total("sluice_request_latency_seconds_count", api="Produce") == api_count(metrics, "Produce")
    produce_summary = next(r["latency"] for r in metrics["requests"] if r["api"] == "Produce")
    assert total("sluice_request_latency_seconds", api="Produce", quantile="0.99") == produce_summary["p99_us"] / 1e6
    assert total("sluice_fsyncs_total") == total("sluice_fsync_latency_seconds_count") == metrics["fsync"]["count"]
    assert total("sluice_fsync_latency_seconds_sum") > 0
    assert {s: total("sluice_shard_requests_total", shard=str(s)) for s in (0, 1)} == {
        s["shard"]: s["requests"] for s in metrics["shards"]}
    for partition, count in RECORDS_PER_PARTITION.items():
        assert total("sluice_partition_log_end_offset", topic=TOPIC, partition=str(partition)) == count
        assert total("sluice_partition_high_watermark", topic=TOPIC, partition=str(partition)) == count
    assert total("sluice_build_info") == 1 and total("sluice_uptime_seconds") > 0

    assert scrape(loaded_broker, "/").rsplit("\n", 1)[1].startswith("404")
    assert scrape(loaded_broker, "/metrics/x").rsplit("\n", 1)[1].startswith("404")
    post = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                           f"http://{loaded_broker.metrics_address}/metrics"], capture_output=True, text=True, timeout=30)
    assert post.stdout == "405"
    # Garbage on the metrics port is answered or dropped; the endpoint keeps working.
    host, port = loaded_broker.metrics_address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 400")
    assert scrape(loaded_broker).rsplit("\n", 1)[1].startswith("200")


def test_a_second_broker_on_the_same_data_directory_is_refused(loaded_broker):
    result = subprocess.run(
        [str(SLUICE), "serve", "--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(loaded_broker.data_dir),
         "--cores", "1"], capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"in use by another sluice process" in result.stderr
    assert Admin(loaded_broker)(command="status")["ok"] is True, "the running broker keeps its socket"
