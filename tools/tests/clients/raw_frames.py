"""Kafka frames over a raw socket, for the tests that send what no client library would."""
import struct


def frame(api_key, version, correlation_id, body=b"", client_id=b"raw"):
    """A request frame: size, header v1 (key, version, correlation id, client id), body."""
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def read_response(sock):
    """One response frame's bytes, without the size."""
    size = struct.unpack(">i", recv_exactly(sock, 4))[0]
    return recv_exactly(sock, size)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
