"""A confluent-kafka group member in its own process, so tests can SIGKILL it. Prints one
JSON line per event: {"assigned": [...]}, {"revoked": [...]}, {"msg": "..."} and
{"committed": n} after each synchronous commit; exits after --seconds, or --idle seconds
without messages once it has had some.

  python group_worker.py ADDRESS TOPIC GROUP [--instance ID] [--strategy S] [--throttle-ms N]
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--instance")
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--session-ms", type=int, default=6000)
    parser.add_argument("--throttle-ms", type=int, default=0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--idle", type=float, default=5)
    args = parser.parse_args()
    config = {"bootstrap.servers": args.address, "group.id": args.group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False, "session.timeout.ms": args.session_ms, "heartbeat.interval.ms": 500,
              "partition.assignment.strategy": args.strategy}
    if args.instance:
        config["group.instance.id"] = args.instance
    consumer = Consumer(config)
    consumer.subscribe([args.topic],
                       on_assign=lambda c, parts: emit(assigned=sorted(p.partition for p in parts)),
                       on_revoke=lambda c, parts: emit(revoked=sorted(p.partition for p in parts)))
    start = time.time()
    last_message = None
    while time.time() - start < args.seconds:
        if last_message and time.time() - last_message > args.idle:
            break
        batch = consumer.consume(args.batch, 0.2)
        for message in batch:
            if message.error():
                emit(error=str(message.error()))
                continue
            emit(msg=message.value().decode())
        if batch:
            last_message = time.time()
            try:
                consumer.commit(asynchronous=False)
                emit(committed=len(batch))
            except KafkaException as error:  # e.g. during a rebalance: the next batch commits
                emit(commit_error=str(error))
            time.sleep(args.throttle_ms / 1000)
    consumer.close()


if __name__ == "__main__":
    main()
