"""Bad input over a raw socket: each gets a Kafka error code or a closed connection for
that client only, and the broker keeps serving everyone else."""
import socket
import struct

from kafka.record.default_records import DefaultRecordBatchBuilder

from raw_frames import frame, read_response

CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10


def connect(broker):
    return socket.create_connection(("127.0.0.1", broker.port), timeout=10)


def closed_by_broker(sock):
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def kafka_string(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def batch(value_size=10, records=1):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for i in range(records):
        builder.append(i, 1_700_000_000_000, b"k", b"x" * value_size, [])
    return bytes(builder.build())


def produce_v3(topic, records, correlation_id=7):
    body = struct.pack(">hhi", -1, -1, 5000)  # null transactional id, acks=all, timeout
    body += struct.pack(">i", 1) + kafka_string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", 0) + struct.pack(">i", len(records)) + records
    return frame(0, 3, correlation_id, body)


def produce_error(broker, topic, records):
    with connect(broker) as sock:
        sock.sendall(produce_v3(topic, records))
        response = read_response(sock)
    correlation_id, topics = struct.unpack(">ii", response[:8])
    assert correlation_id == 7 and topics == 1
    name_len = struct.unpack(">h", response[8:10])[0]
    at = 10 + name_len
    partitions, index, error_code, base_offset = struct.unpack(">iihq", response[at:at + 18])
    assert partitions == 1 and index == 0
    return error_code, base_offset


def api_versions_v0(sock, correlation_id=1):
    sock.sendall(frame(18, 0, correlation_id, b""))
    response = read_response(sock)
    assert struct.unpack(">ih", response[:6]) == (correlation_id, 0)


def test_malformed_frames_close_only_their_connection(start_broker):
    broker = start_broker("--cores", "2", "--auto-create-topics", "false")
    healthy = connect(broker)
    api_versions_v0(healthy)
    bad_inputs = [
        struct.pack(">i", 100) + b"\x00\x12",  # truncated frame, then the client goes away
        struct.pack(">i", 2_000_000_000),  # absurd length
        struct.pack(">i", -5),  # negative length
        frame(999, 0, 3, b""),  # unknown API key
        frame(3, 99, 4, b""),  # Metadata v99
        frame(3, 1, 5, b"\x7f\xff\xff\xff"),  # Metadata v1 claiming 2^31 topics (the kafka-protocol abort)
        frame(0, 3, 6, b"\xff\xff\xff"),  # Produce cut inside its body
        struct.pack(">i", 3) + b"\x00\x03\x00",  # shorter than a request header
    ]
    for raw in bad_inputs:
        with connect(broker) as sock:
            sock.sendall(raw)
            if raw.startswith(struct.pack(">i", 100)):
                sock.shutdown(socket.SHUT_WR)
            assert closed_by_broker(sock), raw
    # ApiVersions at a version we do not serve: a v0 answer with UNSUPPORTED_VERSION (KIP-511).
    with connect(broker) as sock:
        sock.sendall(frame(18, 77, 9, b""))
        response = read_response(sock)
        assert struct.unpack(">ih", response[:6]) == (9, 35)
    api_versions_v0(healthy, correlation_id=2)
    assert broker.process.poll() is None, "the broker survived every bad input"


def test_bad_batches_get_kafka_error_codes(start_broker):
    broker = start_broker("--cores", "2", "--auto-create-topics", "false", "--message-max-bytes", "100000")
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.address)
    admin.create_topics([NewTopic("bad", num_partitions=1, replication_factor=1)])
    admin.close()

    good = batch()
    assert produce_error(broker, "bad", good) == (0, 0)
    wrong_crc = bytearray(good)
    wrong_crc[-1] ^= 0xFF  # a byte of the last record: covered by the CRC
    assert produce_error(broker, "bad", bytes(wrong_crc))[0] == CORRUPT_MESSAGE
    assert produce_error(broker, "bad", batch(value_size=200_000))[0] == MESSAGE_TOO_LARGE
    assert produce_error(broker, "missing", good)[0] == UNKNOWN_TOPIC_OR_PARTITION
    # Nothing bad was stored: the next good batch lands right after the first.
    assert produce_error(broker, "bad", good) == (0, 1)
