"""A confluent-kafka consume-transform-produce instance in its own process, so tests can
SIGKILL it: it reads INPUT in GROUP (read_committed), and for each polled batch writes
the records to OUTPUT and commits the consumer's positions with send_offsets_to_transaction,
all in one transaction. A restarted instance uses the same transactional id, fencing its
previous incarnation. Exits after --seconds, or after --idle seconds without input. Prints one JSON line when a transaction's records are sent ({"open": n}, the
moment tests kill it) and one when it commits ({"committed": n}).

  python transactional_worker.py ADDRESS INPUT OUTPUT GROUP TRANSACTIONAL_ID
"""
import argparse
import json
import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def emit(**event):
    sys.stdout.write(json.dumps({**event, "at": round(time.time(), 3)}) + "\n")
    sys.stdout.flush()


def rewind(consumer):
    """After an abort: back to the group's committed offsets, which the aborted
    transaction did not move."""
    assignment = consumer.assignment()
    if not assignment:
        return
    for committed in consumer.committed(assignment, 30):
        offset = committed.offset if committed.offset >= 0 else 0  # OFFSET_INVALID: from the start
        consumer.seek(TopicPartition(committed.topic, committed.partition, offset))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("group")
    parser.add_argument("transactional_id")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--idle", type=float, default=8)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--stuck", type=float, default=20, help="exit(4) if one transaction takes this long")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds inside each transaction")
    args = parser.parse_args()
    consumer = Consumer({"bootstrap.servers": args.address, "group.id": args.group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                         # Static membership: a restarted instance takes its partitions back
                         # without a rebalance.
                         "group.instance.id": args.transactional_id})
    debug = {"debug": os.environ["TXN_WORKER_DEBUG"]} if os.environ.get("TXN_WORKER_DEBUG") else {}
    producer = Producer({"bootstrap.servers": args.address, "transactional.id": args.transactional_id,
                         "transaction.timeout.ms": 10000, "linger.ms": 5, **debug})
    producer.init_transactions(60)
    consumer.subscribe([args.input])
    started = last_input = time.time()
    while time.time() - started < args.seconds:
        if time.time() - last_input > args.idle:
            break
        records = [m for m in consumer.consume(args.batch, 0.5) if not m.error()]
        if not records:
            continue
        last_input = time.time()
        # librdkafka's send_offsets_to_transaction can block past its timeout when the group
        # coordinator's broker went away (librdkafka issues #5456, #5511): a stuck
        # instance exits, and the test restarts it as an operator's supervisor would.
        watchdog = threading.Timer(args.stuck, lambda: (emit(stuck=args.stuck), os._exit(4)))
        watchdog.start()
        try:
            producer.begin_transaction()
            for record in records:
                producer.produce(args.output, key=record.key(), value=record.value())
            producer.flush(30)
            emit(open=len(records))  # the test may kill it now, mid-transaction
            time.sleep(args.pause)
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            emit(committed=len(records))
        except KafkaException as raised:
            error = raised.args[0]
            if error.fatal():
                emit(fatal=str(error))
                sys.exit(3)
            emit(aborting=str(error))
            producer.abort_transaction(30)
            rewind(consumer)
        finally:
            watchdog.cancel()
    consumer.close()


if __name__ == "__main__":
    main()
