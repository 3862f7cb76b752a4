"""`sluice bench produce|consume|e2e|plot` (the Kafka load generator) against a real broker:
its counts agree with what the broker stored and what other clients read, a broker stall
shows up in the open-loop tail latency, and bad flags get a clear error."""
import json
import signal
import subprocess
import threading
import time

from confluent_kafka import Consumer, TopicPartition

from conftest import SLUICE


def bench(broker, mode, *flags, timeout=120):
    result = subprocess.run([str(SLUICE), "bench", mode, "-b", broker.address, *flags],
                            capture_output=True, text=True, timeout=timeout)
    return result


def bench_json(broker, tmp_path, mode, *flags, timeout=120):
    out = tmp_path / f"{mode}-{time.monotonic_ns()}.json"
    result = bench(broker, mode, *flags, "--json", str(out), timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr + "\nbroker log:\n" + broker.log_tail()
    return json.loads(out.read_text()), result.stdout


def log_end_total(broker, topic, partitions):
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "offsets-probe"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(partitions))
    finally:
        consumer.close()


def test_open_loop_counts_match_the_broker_and_the_e2e_consumer(broker, tmp_path):
    # 5000 msg/s for 1 s of warm-up and 3 s measured: the broker must hold all 20 000, the
    # measured window 15 000, and the consumers must see each measured message once.
    saved, stdout = bench_json(broker, tmp_path, "e2e", "-t", "e2e", "--partitions", "4", "-r", "5000",
                               "-d", "3", "--warmup", "1", "--linger-ms", "1", "-p", "2", "-c", "2",
                               "--label", "sluice")
    report = saved["report"]
    assert report["produce"]["messages"] == 15_000, report["produce"]
    assert report["consume"]["messages"] == 15_000, report["consume"]
    assert report["produce"]["failed"] == 0 and report["produce"]["first_failure"] is None
    assert report["e2e_latency"]["count"] == 15_000
    assert 0 < report["e2e_latency"]["p50_us"] <= report["e2e_latency"]["max_us"]
    assert report["produce"]["bytes"] == 15_000 * 1024
    assert log_end_total(broker, "e2e", 4) == 20_000
    assert saved["settings"]["rate"] == "5000" and saved["label"] == "sluice"
    # Answers spread over the window as the messages were: the rate is the scheduled one.
    assert abs(report["produce"]["msgs_per_s"] - 5000) < 50, report["produce"]
    assert abs(report["consume"]["msgs_per_s"] - 5000) < 50, report["consume"]
    assert "p99" in stdout and "| produce | " in stdout, stdout
    # Progress lines: one a second, measured ones recorded in the JSON.
    assert 2 <= len(report["progress"]) <= 5, report["progress"]


def test_a_one_second_broker_stall_reaches_the_tail(broker, tmp_path):
    # The broker is stopped (SIGSTOP) for 1 s in the middle of a 6 s open-loop run at
    # 2000 msg/s. Latency counts from each message's intended send time, so the ~2000
    # messages due during the stall carry it: p99.9 and max near 1 s, the median not.
    def stall():
        time.sleep(3.0)
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        broker.process.send_signal(signal.SIGCONT)

    staller = threading.Thread(target=stall)
    staller.start()
    try:
        saved, _ = bench_json(broker, tmp_path, "produce", "-t", "stall", "-r", "2000", "-d", "6",
                              "--warmup", "0", "--linger-ms", "1")
    finally:
        staller.join()
        broker.process.send_signal(signal.SIGCONT)
    produce = saved["report"]["produce"]
    assert produce["messages"] == 12_000 and produce["failed"] == 0, produce
    latency = produce["latency"]
    assert latency["max_us"] >= 900_000, latency
    assert latency["p999_us"] >= 800_000, latency
    assert latency["p99_us"] >= 500_000, latency
    assert latency["p50_us"] < 200_000, latency


def test_consume_reads_the_whole_topic_and_other_clients_read_the_bench_s_records(broker, tmp_path):
    saved, _ = bench_json(broker, tmp_path, "consume", "-t", "cons", "--partitions", "3",
                          "--fill-messages", "30000", "-c", "2", "--compression", "zstd",
                          "--keys", "uniform:500", "--message-size", "uniform:100-300")
    report = saved["report"]
    assert report["fill"]["messages"] == 30_000 and report["fill"]["failed"] == 0
    assert report["consume"]["messages"] == 30_000, report["consume"]
    assert report["consume"]["bytes"] == report["fill"]["bytes"]
    assert report["consume"]["latency"]["count"] > 0, "fetch round trips were timed"
    # librdkafka reads the zstd batches and finds keyed records on every partition.
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": "bench-check",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition("cons", p, 0) for p in range(3)])
    seen, partitions = 0, set()
    deadline = time.time() + 30
    while seen < 30_000 and time.time() < deadline:
        for message in consumer.consume(1000, timeout=1):
            assert message.error() is None, message.error()
            assert message.key().startswith(b"key-") and 100 <= len(message.value()) <= 300
            partitions.add(message.partition())
            seen += 1
    consumer.close()
    assert seen == 30_000 and partitions == {0, 1, 2}


def test_results_are_saved_and_plotted(broker, tmp_path):
    chart = tmp_path / "one.html"
    first, _ = bench_json(broker, tmp_path, "produce", "-t", "plots", "-n", "20000", "--plot", str(chart),
                          "--label", "first")
    assert first["report"]["produce"]["messages"] == 20_000
    assert first["report"]["produce"]["latency_curve"][-1][0] == 100.0
    assert chart.read_text().count("<polyline") == 1
    paths = []
    for label in ("a", "b"):
        path = tmp_path / f"{label}.json"
        result = bench(broker, "produce", "-t", "plots", "-n", "5000", "--label", label, "--json", str(path))
        assert result.returncode == 0, result.stderr
        paths.append(str(path))
    both = tmp_path / "both.html"
    result = subprocess.run([str(SLUICE), "bench", "plot", "-o", str(both), *paths],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    html = both.read_text()
    assert html.count("<polyline") == 2 and "a produce ack" in html and "b produce ack" in html


def test_bad_flags_and_unreachable_brokers_get_clear_errors(broker, tmp_path):
    for flags, expected in [(["--rate", "fast"], "--rate"), (["--message-size", "8"], "at least 16"),
                            (["--keys", "zipf:0"], "at least one key"), (["--acks", "2"], "--acks"),
                            (["--compression", "brotli"], "--compression")]:
        result = bench(broker, "produce", "-d", "1", *flags)
        assert result.returncode != 0 and expected in result.stderr, (flags, result.stderr)
    result = subprocess.run([str(SLUICE), "bench", "produce", "-b", "127.0.0.1:1", "-d", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "cannot connect" in result.stderr, result.stderr
