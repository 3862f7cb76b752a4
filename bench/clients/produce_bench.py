"""librdkafka's producer (confluent-kafka) against Kafka-compatible brokers, one after the
other in the same run: 1 KiB messages, 6 partitions, acks=all, linger 5 ms, for a fixed
time. Prints, per broker, MB/s, msgs/s and ack latency percentiles (from produce() to the
delivery report), and a markdown table with the ratio to the first broker.

  python produce_bench.py --seconds 20 sluice=127.0.0.1:9092 tansu=127.0.0.1:9093
"""
import argparse
import os
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def run(address, topic, seconds, size, partitions):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        try:
            future.result(30)
        except Exception as error:  # already exists from an earlier run
            print(f"{address}: create {topic}: {error}")
    producer = Producer({"bootstrap.servers": address, "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": 200_000, "batch.size": 1 << 20})
    latencies = []
    errors = [0]
    payload = os.urandom(size)

    def delivered(error, _message, sent=None):
        if error:
            errors[0] += 1

    start = time.perf_counter()
    deadline = start + seconds
    sent = 0
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        try:
            producer.produce(topic, value=payload, partition=sent % partitions,
                             on_delivery=lambda e, m, t=t: (latencies.append(time.perf_counter() - t), delivered(e, m)))
            sent += 1
        except BufferError:
            producer.poll(0.001)
            continue
        if sent % 500 == 0:
            producer.poll(0)
    producer.flush(60)
    elapsed = time.perf_counter() - start
    latencies.sort()
    acked = len(latencies) - errors[0]
    return {
        "msgs_per_s": acked / elapsed,
        "mb_per_s": acked * size / elapsed / 1e6,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "p999_ms": percentile(latencies, 0.999) * 1e3,
        "errors": errors[0],
        "acked": acked,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--topic", default=f"bench-{int(time.time())}")
    parser.add_argument("brokers", nargs="+", help="name=host:port")
    args = parser.parse_args()
    results = []
    for spec in args.brokers:
        name, address = spec.split("=", 1)
        result = run(address, args.topic, args.seconds, args.size, args.partitions)
        print(name, result, flush=True)
        results.append((name, result))
    base = results[0][1]
    print(f"| broker | MB/s | msgs/s | p50 ms | p99 ms | p99.9 ms | errors | MB/s vs {results[0][0]} |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results:
        print(f"| {name} | {r['mb_per_s']:.1f} | {r['msgs_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['p999_ms']:.2f} | {r['errors']} | {r['mb_per_s'] / base['mb_per_s']:.2f} |")


if __name__ == "__main__":
    main()
