"""Security (issue 15) with real clients: TLS (server and mutual), SASL PLAIN and SCRAM, the
ACL authorizer, SCRAM users through the AdminClient, HTTPS and basic auth on the HTTP
endpoints, and refusals of everything else.

Certificates are made here with openssl: a CA, a server certificate for localhost and
127.0.0.1, a client certificate for alice, and a second CA with its own client certificate.
One broker per test module serves four listeners (PLAINTEXT, SSL with required client
certificates, SASL_SSL, SASL_PLAINTEXT) with the ACL authorizer on; `User:admin` and
alice's certificate principal are super users. Users are made over the admin socket, as a
newcomer bootstraps the first one."""
import base64
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from certificates import make_all
from conftest import SLUICE, Broker, free_port
from raw_frames import frame, read_response, recv_exactly

ALICE_PRINCIPAL = "User:CN=alice,OU=Test,O=Sluice"
ADMIN_PASSWORD = "admin-secret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_all(tmp_path_factory.mktemp("certs"))


class SecureBroker(Broker):
    """A broker with four listeners and the ACL authorizer on; `address` is the PLAINTEXT
    listener (readiness, and ANONYMOUS clients)."""

    def __init__(self, data_dir, certs, *flags):
        super().__init__(data_dir, listen=False)
        self.ports = {"PLAINTEXT": self.port, **{name: free_port() for name in ("SSL", "SASL_SSL", "SASL_PLAINTEXT")}}
        self.certs = certs
        listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in self.ports.items())
        self.flags = ("--listeners", listeners, "--tls-cert", str(certs / "server.pem"),
                      "--tls-key", str(certs / "server.key"), "--tls-client-ca", str(certs / "ca.pem"),
                      "--sasl-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                      # Kafka's `;` list would do too; `,` splits only before a `User:`.
                      "--super-users", f"User:admin,{ALICE_PRINCIPAL}", *flags)

    def address_of(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"


@pytest.fixture(scope="module")
def secure(tmp_path_factory, certs):
    """The module's broker, with users admin (SCRAM-SHA-512, a super user), carol
    (SCRAM-SHA-256) and dave (SCRAM-SHA-512), made over the admin socket."""
    broker = SecureBroker(tmp_path_factory.mktemp("secure") / "data", certs, "--cores", "2").start()
    for name, mechanism, password in (("admin", "SCRAM-SHA-512", ADMIN_PASSWORD), ("carol", "SCRAM-SHA-256", "carol-pw"),
                                      ("dave", "SCRAM-SHA-512", "dave-pw")):
        admin_user(broker, "create", name, "--mechanism", mechanism, "--password-stdin", stdin=password + "\n")
    yield broker
    status = broker.exited_by_itself()
    broker.stop()
    assert status is None, f"broker exited by itself with {status}:\n{broker.log_tail()}"


def admin_user(broker, *args, stdin=None):
    result = subprocess.run([str(SLUICE), "admin", "--data-dir", str(broker.data_dir), "user", *args], input=stdin,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def scram_config(broker, user, password, mechanism="SCRAM-SHA-512", listener="SASL_SSL", **extra):
    config = {"bootstrap.servers": broker.address_of(listener), "security.protocol": listener,
              "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password, **extra}
    if listener == "SASL_SSL":
        config["ssl.ca.location"] = str(broker.certs / "ca.pem")
    return config


def mtls_config(broker, name="alice", ca="ca"):
    return {"bootstrap.servers": broker.address_of("SSL"), "security.protocol": "SSL",
            "ssl.ca.location": str(broker.certs / f"{ca}.pem"),
            "ssl.certificate.location": str(broker.certs / f"{name}.pem"),
            "ssl.key.location": str(broker.certs / f"{name}.key")}


def admin_config(broker):
    return scram_config(broker, "admin", ADMIN_PASSWORD)


def produce_and_consume(config, topic, count=200, already=0, group=None):
    """Produces `count` records with acks=all to a topic holding `already`, and reads the
    topic back from the start (in `group`, a new one by default); returns the values read."""
    producer = Producer({**config, "acks": "all", "enable.idempotence": True})
    errors = []
    for i in range(count):
        producer.produce(topic, f"value-{i}".encode(), key=f"k{i}".encode(),
                         on_delivery=lambda error, _m: errors.append(error) if error else None)
    assert producer.flush(60) == 0 and not errors, errors
    consumer = Consumer({**config, "group.id": group or f"g-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    values, deadline = [], time.time() + 60
    while len(values) < already + count and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value().decode())
    consumer.close()
    return values


def create_topic(broker, topic, partitions=3):
    admin = AdminClient(admin_config(broker))
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def test_confluent_kafka_over_sasl_ssl_scram_512_and_over_ssl_with_client_certificates(secure):
    create_topic(secure, "secured")
    values = produce_and_consume(admin_config(secure), "secured")
    assert sorted(values) == sorted(f"value-{i}" for i in range(200))
    # alice is a super user by her certificate's subject.
    values = produce_and_consume(mtls_config(secure), "secured", already=200)
    assert len(values) == 400


def test_sasl_scram_256_and_plain_check_the_same_stored_credentials(secure):
    create_topic(secure, "carol-topic", 1)
    admin = AdminClient(admin_config(secure))
    for future in admin.create_acls([
        AclBinding(ResourceType.TOPIC, "carol-", ResourcePatternType.PREFIXED, "User:carol", "*",
                   AclOperation.ALL, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "*", ResourcePatternType.LITERAL, "User:carol", "*",
                   AclOperation.READ, AclPermissionType.ALLOW),
    ]).values():
        future.result(30)
    scram = scram_config(secure, "carol", "carol-pw", mechanism="SCRAM-SHA-256", listener="SASL_PLAINTEXT")
    assert len(produce_and_consume(scram, "carol-topic", 50)) == 50
    plain = scram_config(secure, "carol", "carol-pw", mechanism="PLAIN", listener="SASL_SSL")
    assert len(produce_and_consume(plain, "carol-topic", 50, already=50)) == 100


def test_kafka_python_and_aiokafka_over_sasl_plaintext_plain(secure):
    import asyncio

    import aiokafka
    import kafka
    create_topic(secure, "py-plain", 1)
    sasl = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "admin",
            "sasl_plain_password": ADMIN_PASSWORD}
    producer = kafka.KafkaProducer(bootstrap_servers=secure.address_of("SASL_PLAINTEXT"), acks="all", **sasl)
    for i in range(20):
        producer.send("py-plain", f"kp-{i}".encode())
    producer.flush(30)
    producer.close()

    async def aio():
        consumer = aiokafka.AIOKafkaConsumer("py-plain", bootstrap_servers=secure.address_of("SASL_PLAINTEXT"),
                                             auto_offset_reset="earliest", group_id="aio-plain", **sasl)
        await consumer.start()
        try:
            seen = []
            async with asyncio.timeout(60):
                while len(seen) < 20:
                    batch = await consumer.getmany(timeout_ms=1000)
                    seen += [m.value.decode() for records in batch.values() for m in records]
            return seen
        finally:
            await consumer.stop()
    assert sorted(asyncio.run(aio())) == sorted(f"kp-{i}" for i in range(20))


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by `make test`")
def test_kcat_over_sasl_ssl_scram_512_and_mutual_tls(secure):
    create_topic(secure, "kcat-secure", 1)
    sasl = ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin",
            "-X", f"sasl.password={ADMIN_PASSWORD}", "-X", f"ssl.ca.location={secure.certs / 'ca.pem'}"]
    lines = b"".join(b"line-%d\n" % i for i in range(100))
    subprocess.run(["kcat", "-b", secure.address_of("SASL_SSL"), *sasl, "-P", "-t", "kcat-secure"], input=lines,
                   check=True, capture_output=True, timeout=120)
    mtls = ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={secure.certs / 'ca.pem'}",
            "-X", f"ssl.certificate.location={secure.certs / 'alice.pem'}",
            "-X", f"ssl.key.location={secure.certs / 'alice.key'}"]
    read = subprocess.run(["kcat", "-b", secure.address_of("SSL"), *mtls, "-C", "-t", "kcat-secure", "-e", "-q"],
                          check=True, capture_output=True, timeout=120).stdout
    assert read == lines


def expect_failure(config, topic="secured"):
    """A client that cannot get in: its produce fails with an error, nothing is stored."""
    errors = []
    producer = Producer({**config, "message.timeout.ms": 5000, "error_cb": errors.append})
    producer.produce(topic, b"never", on_delivery=lambda error, _m: errors.append(error))
    producer.flush(15)
    return errors


def test_wrong_password_untrusted_certificate_and_plain_tcp_on_tls_are_refused(secure):
    errors = expect_failure(scram_config(secure, "admin", "wrong"))
    assert any("Authentication failed" in str(e) or "AUTHENTICATION" in str(e) for e in errors), errors
    errors = expect_failure(mtls_config(secure, "mallory"))
    assert errors, "a certificate from another CA gets in"
    errors = expect_failure({"bootstrap.servers": secure.address_of("SSL"), "security.protocol": "PLAINTEXT"})
    assert errors, "a client without TLS got an answer on the SSL listener"
    assert "TLS handshake failed" in secure.log()
    # A client certificate is required on the SSL listener.
    context = ssl.create_default_context(cafile=str(secure.certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(api_versions_frame())
                assert tls.recv(4) == b"", "answered without a client certificate"


def api_versions_frame():
    return frame(18, 0, 1)


def test_before_authentication_only_api_versions_and_the_sasl_apis_are_answered(secure):
    metadata_v1 = frame(3, 1, 7, struct.pack(">i", -1))
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(api_versions_frame())
        assert struct.unpack(">i", read_response(sock)[:4])[0] == 1, "ApiVersions is answered"
        sock.sendall(metadata_v1)
        assert sock.recv(4) == b"", "Metadata before authentication got an answer"
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33), the enabled list, then close.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 1, 2, struct.pack(">h", 6) + b"GSSAPI"))
        response = read_response(sock)
        assert struct.unpack(">ih", response[:6]) == (2, 33)
        assert b"SCRAM-SHA-512" in response
        assert sock.recv(4) == b""
    # The pre-KIP-152 framing (SaslHandshake v0, then raw tokens): PLAIN as kafka-python 1.x did.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 0, 3, struct.pack(">h", 5) + b"PLAIN"))
        assert struct.unpack(">ih", read_response(sock)[:6]) == (3, 0)
        token = b"\x00admin\x00" + ADMIN_PASSWORD.encode()
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert recv_exactly(sock, 4) == b"\x00\x00\x00\x00", "PLAIN's empty final token"
        sock.sendall(metadata_v1)
        assert struct.unpack(">i", read_response(sock)[:4])[0] == 7, "Metadata after authentication"
    # Raw framing with a wrong password: closed without an answer.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 0, 3, struct.pack(">h", 5) + b"PLAIN"))
        read_response(sock)
        token = b"\x00admin\x00nope"
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert sock.recv(4) == b""
    # Garbage instead of a TLS ClientHello: at most a TLS alert, then the close.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_SSL"]), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\xff\xff" + b"\x00" * 300)
        reply = sock.recv(64)
        assert reply == b"" or reply[:1] == b"\x15", reply
        assert sock.recv(64) == b""
    # A SASL frame over the pre-authentication size limit (512 KiB).
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(struct.pack(">i", 600 << 10) + b"\x00" * 64)
        assert sock.recv(4) == b""
    assert secure.exited_by_itself() is None


def metadata_v4_frame(correlation_id, topic_count):
    """Metadata v4 asking for `topic_count` topics that do not exist (about 40 bytes each),
    without creating them: a request of any size that the broker answers."""
    names = b"".join(struct.pack(">h", 36) + f"absent-{i:029d}".encode() for i in range(topic_count))
    return frame(3, 4, correlation_id, struct.pack(">i", topic_count) + names + b"\x00")


def test_large_requests_trickled_over_tls_are_answered(secure):
    """The broker lets a TLS socket wait for most of a large request at once (a receive
    low-water mark, net/src/receive_low_water.rs); it must never wait for bytes that are not
    coming. Requests around the mark's steps (64 and 256 KiB beyond 128 KiB), written in
    small pieces with pauses, a pause just before the last bytes, and two large requests
    back to back, each followed by a pipelined ApiVersions: every one is answered, in order."""
    context = ssl.create_default_context(cafile=str(secure.certs / "ca.pem"))
    context.load_cert_chain(str(secure.certs / "alice.pem"), str(secure.certs / "alice.key"))
    with socket.create_connection(("127.0.0.1", secure.ports["SSL"]), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            correlation = 100
            for topic_count in (10, 4_800, 5_000, 8_200, 10_000, 30_000):
                big = metadata_v4_frame(correlation, topic_count)
                for start in range(0, len(big) - 100, 3_000):
                    tls.sendall(big[start:min(start + 3_000, len(big) - 100)])
                    if start % 60_000 == 0:
                        time.sleep(0.002)
                time.sleep(0.3)  # the broker waits with the last 100 bytes missing
                tls.sendall(big[-100:] + frame(18, 0, correlation + 1))
                response = read_response(tls)
                assert struct.unpack(">i", response[:4])[0] == correlation
                assert response.count(b"absent-") == topic_count, "every topic answered"
                assert struct.unpack(">i", read_response(tls)[:4])[0] == correlation + 1
                correlation += 2
            two = metadata_v4_frame(correlation, 20_000) + metadata_v4_frame(correlation + 1, 9_000)
            tls.sendall(two + frame(18, 0, correlation + 2))
            for expected in (correlation, correlation + 1, correlation + 2):
                assert struct.unpack(">i", read_response(tls)[:4])[0] == expected
    assert secure.exited_by_itself() is None


def test_acls_decide_produce_fetch_groups_topics_and_metadata(secure):
    create_topic(secure, "acl-topic", 1)
    dave = scram_config(secure, "dave", "dave-pw")
    admin = AdminClient(admin_config(secure))
    dave_admin = AdminClient(dave)
    # No ACLs for dave: Metadata shows no topics, produce fails, topic creation and deletion fail.
    assert "acl-topic" not in dave_admin.list_topics(timeout=30).topics
    errors = expect_failure(dave, "acl-topic")
    assert any("TOPIC_AUTHORIZATION_FAILED" in str(e) or "authorization" in str(e).lower() for e in errors), errors
    with pytest.raises(KafkaException, match="AUTHORIZATION"):
        dave_admin.create_topics([NewTopic("dave-topic", 1, 1)])["dave-topic"].result(30)
    with pytest.raises(KafkaException, match="AUTHORIZATION"):
        dave_admin.delete_topics(["acl-topic"])["acl-topic"].result(30)
    consumer = Consumer({**dave, "group.id": "dave-group", "auto.offset.reset": "earliest"})
    consumer.subscribe(["acl-topic"])
    group_error = None
    deadline = time.time() + 30
    while group_error is None and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is not None:
            group_error = message.error()
    consumer.close()
    assert group_error is not None and "AUTHORIZATION" in group_error.name(), group_error

    def create(*bindings):
        for future in admin.create_acls(list(bindings)).values():
            future.result(30)

    topic_all = AclBinding(ResourceType.TOPIC, "acl-", ResourcePatternType.PREFIXED, "User:dave", "*",
                           AclOperation.ALL, AclPermissionType.ALLOW)
    group_read = AclBinding(ResourceType.GROUP, "dave-", ResourcePatternType.PREFIXED, "User:dave", "*",
                            AclOperation.READ, AclPermissionType.ALLOW)
    create(topic_all, group_read)
    described = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:dave",
                                                     None, AclOperation.ANY, AclPermissionType.ANY)).result(30)
    assert {(b.name, b.operation) for b in described} == {("acl-", AclOperation.ALL), ("dave-", AclOperation.READ)}
    # Now dave works, through the prefixed patterns.
    assert len(produce_and_consume(dave, "acl-topic", 30, group="dave-g")) == 30
    assert "acl-topic" in dave_admin.list_topics(timeout=30).topics
    # A deny beats the allow.
    deny_write = AclBinding(ResourceType.TOPIC, "acl-topic", ResourcePatternType.LITERAL, "User:dave", "*",
                            AclOperation.WRITE, AclPermissionType.DENY)
    create(deny_write)
    assert expect_failure(dave, "acl-topic")
    # DeleteAcls takes both back: dave is out again.
    deleted = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:dave",
                                                  None, AclOperation.ANY, AclPermissionType.ANY)])
    removed = [b for future in deleted.values() for b in future.result(30)]
    assert {b.name for b in removed} == {"acl-", "acl-topic"}
    assert "acl-topic" not in dave_admin.list_topics(timeout=30).topics
    # ACL requests need ALTER on the cluster.
    with pytest.raises(KafkaException, match="CLUSTER_AUTHORIZATION_FAILED"):
        for future in dave_admin.create_acls([topic_all]).values():
            future.result(30)


def run_sluice(*args, password=None, stdin=None):
    """Runs a `sluice` client command with SLUICE_SASL_PASSWORD set to `password` (or unset)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SLUICE_")}
    if password is not None:
        env["SLUICE_SASL_PASSWORD"] = password
    return subprocess.run([str(SLUICE), *args], input=stdin, capture_output=True, text=True, timeout=60, env=env)


def sluice_sasl_ssl_flags(broker, user="admin", mechanism="SCRAM-SHA-512"):
    return ["-b", broker.address_of("SASL_SSL"), "--security-protocol", "SASL_SSL", "--sasl-mechanism", mechanism,
            "--sasl-username", user, "--tls-ca", str(broker.certs / "ca.pem")]


def test_the_load_generator_over_sasl_ssl_and_mutual_tls(secure, tmp_path):
    """`sluice bench` takes the client commands' security flags: produce over SASL_SSL,
    consume over mutual TLS, nothing failed and at least what was produced read back;
    without the password it says what is missing."""
    mtls = ["-b", secure.address_of("SSL"), "--security-protocol", "SSL", "--tls-ca", str(secure.certs / "ca.pem"),
            "--tls-cert", str(secure.certs / "alice.pem"), "--tls-key", str(secure.certs / "alice.key")]
    load = ["-t", "bench-over-tls", "--partitions", "3", "--message-size", "1024", "--acks", "all"]
    runs = {"produce": (sluice_sasl_ssl_flags(secure), ["--duration", "2"]), "consume": (mtls, [])}
    for mode, (connection, extra) in runs.items():
        report = tmp_path / f"{mode}.json"
        result = run_sluice("bench", mode, *connection, *load, *extra, "--json", str(report), password=ADMIN_PASSWORD)
        assert result.returncode == 0, result.stderr
        flow = json.loads(report.read_text())["report"][mode]
        assert flow["messages"] > 0 and flow["failed"] == 0, flow
        if mode == "produce":
            produced = flow["messages"]
        else:  # the consume run may fill the topic some more before it reads
            assert flow["messages"] >= produced, (flow, produced)
    refused = run_sluice("bench", "produce", *sluice_sasl_ssl_flags(secure), *load, "--duration", "1")
    assert refused.returncode != 0 and "SLUICE_SASL_PASSWORD" in refused.stderr, refused.stderr


def test_sluice_user_and_acl_commands_over_sasl_ssl_and_topic_list_over_mutual_tls(secure, tmp_path):
    admin = sluice_sasl_ssl_flags(secure)

    def as_admin(*args, stdin=None):
        result = run_sluice(*args, *admin, password=ADMIN_PASSWORD, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    # A user made by the client (which sends only a salt and SaltedPassword) logs in.
    as_admin("user", "create", "gina", "--mechanism", "SCRAM-SHA-256", "--iterations", "8192", "--password-stdin",
             stdin="gina-pw\n")
    assert re.search(r"^gina\s+SCRAM-SHA-256\s+8192$", as_admin("user", "list"), re.M)
    assert re.search(r"^admin\s+SCRAM-SHA-512\s+4096$", as_admin("user", "describe", "admin"), re.M)
    AdminClient(scram_config(secure, "gina", "gina-pw", mechanism="SCRAM-SHA-256")).list_topics(timeout=30)
    # The password may come from a file instead of the environment.
    password_file = tmp_path / "admin-password"
    password_file.write_text(ADMIN_PASSWORD + "\n")
    from_file = run_sluice("user", "list", *admin, "--sasl-password-file", str(password_file))
    assert from_file.returncode == 0 and "gina" in from_file.stdout, from_file.stderr

    # ACLs: created, listed (by the CLI and by librdkafka), deleted.
    created = as_admin("acl", "create", "--principal", "User:gina", "--operation", "Read", "--operation", "describe",
                       "--topic", "gina-", "--prefixed")
    assert "created ALLOW User:gina READ on TOPIC gina- (PREFIXED) from *" in created, created
    listed = as_admin("acl", "list", "--principal", "User:gina")
    assert re.search(r"^TOPIC\s+gina-\s+PREFIXED\s+User:gina\s+\*\s+READ\s+ALLOW$", listed, re.M), listed
    assert re.search(r"^TOPIC\s+gina-\s+PREFIXED\s+User:gina\s+\*\s+DESCRIBE\s+ALLOW$", listed, re.M), listed
    admin_client = AdminClient(admin_config(secure))
    described = admin_client.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,
                                                             "User:gina", None, AclOperation.ANY,
                                                             AclPermissionType.ANY)).result(30)
    assert {(b.name, b.operation) for b in described} == {("gina-", AclOperation.READ),
                                                           ("gina-", AclOperation.DESCRIBE)}
    deleted = as_admin("acl", "delete", "--principal", "User:gina", "--topic", "gina-", "--prefixed")
    assert deleted.startswith("deleted 2 ACLs"), deleted
    assert "User:gina" not in as_admin("acl", "list")
    as_admin("user", "delete", "gina", "--mechanism", "SCRAM-SHA-256")
    missing = run_sluice("user", "describe", "gina", *admin, password=ADMIN_PASSWORD)
    assert missing.returncode != 0 and "ResourceNotFound" in missing.stderr, missing.stderr

    # Mutual TLS: alice's certificate makes her a super user on the SSL listener.
    create_topic(secure, "cli-mtls")
    mtls = ["-b", secure.address_of("SSL"), "--security-protocol", "SSL", "--tls-ca", str(secure.certs / "ca.pem"),
            "--tls-cert", str(secure.certs / "alice.pem"), "--tls-key", str(secure.certs / "alice.key")]
    topics = run_sluice("topic", "list", *mtls)
    assert topics.returncode == 0 and re.search(r"^cli-mtls\s", topics.stdout, re.M), topics.stderr
    # Without a client certificate the SSL listener refuses the handshake.
    refused = run_sluice("topic", "list", *mtls[:-4])
    assert refused.returncode != 0, refused.stdout

    # Refusals read clearly: a wrong password, and a user without rights on the cluster.
    wrong = run_sluice("topic", "list", *admin, password="wrong")
    assert wrong.returncode != 0 and "SaslAuthenticationFailed" in wrong.stderr, wrong.stderr
    assert "Authentication failed" in wrong.stderr, wrong.stderr
    dave = run_sluice("user", "list", *sluice_sasl_ssl_flags(secure, "dave"), password="dave-pw")
    assert dave.returncode != 0 and "ClusterAuthorizationFailed" in dave.stderr, dave.stderr
    # No password at all: told where to put it.
    no_password = run_sluice("topic", "list", *admin)
    assert no_password.returncode != 0 and "SLUICE_SASL_PASSWORD" in no_password.stderr, no_password.stderr


def test_scram_users_through_the_admin_client_and_a_deleted_users_reauthentication_fails(tmp_path, certs):
    broker = SecureBroker(tmp_path / "data", certs, "--cores", "1", "--connections-max-reauth-ms", "3000").start()
    try:
        admin_user(broker, "create", "admin", "--mechanism", "SCRAM-SHA-512", "--password-stdin",
                   stdin=ADMIN_PASSWORD + "\n")
        admin = AdminClient(admin_config(broker))
        results = admin.alter_user_scram_credentials([
            UserScramCredentialUpsertion("erin", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                         b"erin-pw"),
            UserScramCredentialUpsertion("frank", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                         b"frank-pw"),
        ])
        for future in results.values():
            future.result(30)
        described = admin.describe_user_scram_credentials().result(30)
        assert described["erin"].scram_credential_infos[0].iterations == 8192
        assert "frank" in described and "admin" in described
        erin = scram_config(broker, "erin", "erin-pw")
        # erin can log in (and sees no topics: no ACLs).
        erin_admin = AdminClient(erin)
        erin_admin.list_topics(timeout=30)
        # Delete erin; her connection's next re-authentication (within 3 s) fails.
        admin.alter_user_scram_credentials([UserScramCredentialDeletion("erin", ScramMechanism.SCRAM_SHA_512)])[
            "erin"].result(30)
        assert "erin" not in admin.describe_user_scram_credentials().result(30)
        deadline = time.time() + 20
        while time.time() < deadline and "SASL authentication failed" not in broker.log():
            try:
                erin_admin.list_topics(timeout=2)
            except KafkaException:
                pass
            time.sleep(0.5)
        assert "SASL authentication failed" in broker.log(), broker.log_tail()
        with pytest.raises(KafkaException):
            AdminClient(erin).list_topics(timeout=5)
    finally:
        status = broker.exited_by_itself()
        broker.stop()
        assert status is None, broker.log_tail()


def http_get(url, context=None, auth=None):
    """(status, body, headers) of a GET, errors included; `auth` is `user:password`."""
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30,
                                    context=context) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def test_http_endpoints_over_https_with_basic_auth_against_the_scram_users(tmp_path, certs):
    metrics_port, registry_port = free_port(), free_port()
    broker = SecureBroker(tmp_path / "data", certs, "--cores", "1", "--http-tls", "--http-auth", "basic",
                          "--metrics-listen", f"127.0.0.1:{metrics_port}",
                          "--schema-registry-listen", f"127.0.0.1:{registry_port}").start()
    try:
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        metrics, registry = f"https://127.0.0.1:{metrics_port}/metrics", f"https://127.0.0.1:{registry_port}"
        # No user yet: every request is refused.
        assert http_get(metrics, context, "grace:grace-pw")[0] == 401
        admin_user(broker, "create", "grace", "--mechanism", "SCRAM-SHA-512", "--password-stdin", stdin="grace-pw\n")

        status, body, _ = http_get(metrics, context, "grace:grace-pw")
        assert status == 200 and b"sluice_build_info" in body
        deadline = time.time() + 30
        while (status := http_get(registry + "/subjects", context, "grace:grace-pw")[0]) != 200:
            assert time.time() < deadline, f"the registry answers {status}"
            time.sleep(0.2)
        for url in (metrics, registry + "/subjects"):
            for auth in ("grace:wrong-pw", "nobody:grace-pw", None):
                status, body, headers = http_get(url, context, auth)
                assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="sluice"', (url, auth)
        status, body, headers = http_get(registry + "/subjects", context)
        assert json.loads(body) == {"error_code": 401, "message": "Unauthorized"}
        assert headers["Content-Type"] == "application/vnd.schemaregistry.v1+json"
        # Plain HTTP to an HTTPS port gets no answer.
        with pytest.raises((urllib.error.URLError, http.client.HTTPException, ConnectionError)):
            http_get(f"http://127.0.0.1:{metrics_port}/metrics", auth="grace:grace-pw")

        schema = json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})
        client = SchemaRegistryClient({"url": registry, "basic.auth.user.info": "grace:grace-pw",
                                       "ssl.ca.location": str(certs / "ca.pem")})
        schema_id = client.register_schema("orders-value", Schema(schema, "AVRO"))
        assert json.loads(client.get_schema(schema_id).schema_str) == json.loads(schema)
        assert client.get_latest_version("orders-value").schema_id == schema_id
        intruder = SchemaRegistryClient({"url": registry, "basic.auth.user.info": "grace:wrong-pw",
                                         "ssl.ca.location": str(certs / "ca.pem")})
        with pytest.raises(SchemaRegistryError) as refused:
            intruder.get_subjects()
        assert refused.value.http_status_code == 401

        # A deleted user is refused from the next request on, though her password was right.
        admin_user(broker, "delete", "grace", "--mechanism", "SCRAM-SHA-512")
        assert http_get(metrics, context, "grace:grace-pw")[0] == 401
    finally:
        status = broker.exited_by_itself()
        broker.stop()
        assert status is None, broker.log_tail()


def test_a_plaintext_only_broker_without_an_authorizer_stays_open(broker):
    admin = AdminClient({"bootstrap.servers": broker.address})
    admin.create_topics([NewTopic("open", 1, 1)])["open"].result(30)
    assert "open" in admin.list_topics(timeout=30).topics
    # DescribeAcls v1 for everything: SECURITY_DISABLED (54), as Kafka without an authorizer
    # (confluent-kafka shows that as an empty list).
    every = struct.pack(">bhbhhbb", 1, -1, 1, -1, -1, 1, 1)
    host, port = broker.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(frame(29, 1, 5, every))
        assert struct.unpack(">iih", read_response(sock)[:10]) == (5, 0, 54)


def wait_until(check, what, timeout=30):
    """Retries `check` (a call that raises until it works) until it works; returns its value."""
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except Exception as error:  # the change has not reached this broker yet
            if time.time() > deadline:
                raise AssertionError(f"{what}: {error}") from error
            time.sleep(0.5)


def test_users_and_acls_replicate_through_a_clusters_controller(tmp_path):
    """Three brokers: a user made over one broker's admin socket logs in on the others, an
    ACL made through one broker is described by another, a user made with the AdminClient
    on a third logs in on the first, and a missing credential is RESOURCE_NOT_FOUND."""
    from cluster import Cluster
    cluster = Cluster(tmp_path)
    sasl_ports = {}
    for node, broker in cluster.brokers.items():
        sasl_ports[node] = free_port()
        broker.listen = ()
        broker.flags = (*broker.flags,
                        "--listeners", f"PLAINTEXT://{broker.address},SASL_PLAINTEXT://127.0.0.1:{sasl_ports[node]}",
                        "--sasl-mechanisms", "SCRAM-SHA-512",
                        # Brokers reach each other, unauthenticated, on their first listener (the
                        # default inter-broker listener).
                        "--super-users", "User:ANONYMOUS;User:admin")
    cluster.start()

    def sasl(node, user="admin", password=ADMIN_PASSWORD):
        return {"bootstrap.servers": f"127.0.0.1:{sasl_ports[node]}", "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}

    def logs_in(config):
        return lambda: AdminClient(config).list_topics(timeout=5)

    admins = {node: None for node in sasl_ports}

    def admin_on(node):
        """An AdminClient logged in as admin through `node`, kept (a dropped client's
        futures fail with _DESTROY)."""
        admins[node] = admins[node] or AdminClient(sasl(node))
        return admins[node]

    try:
        admin_user(cluster.brokers[1], "create", "admin", "--mechanism", "SCRAM-SHA-512", "--password-stdin",
                   stdin=ADMIN_PASSWORD + "\n")
        for node in (2, 3):
            wait_until(logs_in(sasl(node)), f"admin logs in through broker {node}")
        binding = AclBinding(ResourceType.TOPIC, "replicated-", ResourcePatternType.PREFIXED, "User:gina", "*",
                             AclOperation.READ, AclPermissionType.ALLOW)
        admin_on(2).create_acls([binding])[binding].result(30)
        every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:gina", None,
                                 AclOperation.ANY, AclPermissionType.ANY)

        def described_on_3():
            names = [b.name for b in admin_on(3).describe_acls(every).result(10)]
            assert names == ["replicated-"], names
        wait_until(described_on_3, "the ACL made on broker 2 is described by broker 3")
        upsert = UserScramCredentialUpsertion("gina", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                              b"gina-pw")
        admin_on(3).alter_user_scram_credentials([upsert])["gina"].result(30)
        wait_until(logs_in(sasl(1, "gina", "gina-pw")), "gina, made on broker 3, logs in through broker 1")
        missing = UserScramCredentialDeletion("nobody", ScramMechanism.SCRAM_SHA_256)
        with pytest.raises(KafkaException, match="RESOURCE_NOT_FOUND"):
            admin_on(1).alter_user_scram_credentials([missing])["nobody"].result(30)
    finally:
        crashed = cluster.crashed()
        cluster.stop()
        assert not crashed, f"brokers exited by themselves: {crashed}"


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SSL"])
def test_brokers_replicate_over_an_authenticated_inter_broker_listener(tmp_path, certs, protocol):
    """Three brokers that reach each other only on their SASL_SSL listener as User:broker,
    or on their SSL listener as their certificate's principal: User:ANONYMOUS is no super
    user, so a follower fetching over PLAINTEXT would be refused. With
    min.insync.replicas=3 every acknowledged record has been fetched by both followers; a
    committed transaction's markers reach the partitions that other brokers lead."""
    from cluster import Cluster
    password_file = tmp_path / "broker.password"
    password_file.write_text("broker-secret\n")
    cluster = Cluster(tmp_path)
    ports = {node: free_port() for node in cluster.brokers}
    if protocol == "SASL_SSL":
        security = ("--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
                    "--sasl-mechanisms", "SCRAM-SHA-512", "--super-users", "User:broker;User:admin",
                    "--inter-broker-tls-ca", str(certs / "ca.pem"),
                    "--inter-broker-sasl-mechanism", "SCRAM-SHA-512", "--inter-broker-sasl-username", "broker",
                    "--inter-broker-sasl-password-file", str(password_file))
        client = {"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin",
                  "sasl.password": ADMIN_PASSWORD, "ssl.ca.location": str(certs / "ca.pem")}
    else:
        # A broker shows its own certificate (serverAuth and clientAuth); trust comes from
        # --tls-client-ca.
        security = ("--tls-cert", str(certs / "broker.pem"), "--tls-key", str(certs / "broker.key"),
                    "--tls-client-ca", str(certs / "ca.pem"),
                    "--super-users", f"User:CN=broker,O=Sluice;{ALICE_PRINCIPAL}")
        client = {"security.protocol": "SSL", "ssl.ca.location": str(certs / "ca.pem"),
                  "ssl.certificate.location": str(certs / "alice.pem"), "ssl.key.location": str(certs / "alice.key")}
    for node, broker in cluster.brokers.items():
        broker.listen = ()
        broker.flags = (*broker.flags, "--listeners", f"PLAINTEXT://{broker.address},{protocol}://127.0.0.1:{ports[node]}",
                        "--inter-broker-listener-name", protocol, *security)
    cluster.start()
    config = {"bootstrap.servers": ",".join(f"127.0.0.1:{port}" for port in ports.values()), **client}
    try:
        if protocol == "SASL_SSL":
            for user, password in (("broker", "broker-secret"), ("admin", ADMIN_PASSWORD)):
                admin_user(cluster.brokers[1], "create", user, "--mechanism", "SCRAM-SHA-512", "--password-stdin",
                           stdin=password + "\n")
        admin = AdminClient(config)
        topic = NewTopic("inter-broker", 3, 3, config={"min.insync.replicas": "3"})
        wait_until(lambda: admin.create_topics([topic])["inter-broker"].result(10), "the topic is created")

        def fully_replicated():
            partitions = admin.list_topics("inter-broker", timeout=5).topics["inter-broker"].partitions
            assert len(partitions) == 3 and all(len(p.isrs) == 3 for p in partitions.values()), partitions
        wait_until(fully_replicated, "every partition has three in-sync replicas")
        values = produce_and_consume(config, "inter-broker", count=300)
        assert sorted(values) == sorted(f"value-{i}" for i in range(300))
        fully_replicated()
        # A transaction over the three partitions: the coordinator writes the commit markers
        # to the partitions other brokers lead through their inter-broker listener
        # (WriteTxnMarkers needs CLUSTER_ACTION too).
        leaders = {p.leader for p in admin.list_topics("inter-broker", timeout=5).topics["inter-broker"].partitions.values()}
        assert len(leaders) > 1, f"the partitions' leaders should differ: {leaders}"
        producer = Producer({**config, "transactional.id": f"inter-broker-{protocol}"})
        producer.init_transactions(30)
        producer.begin_transaction()
        for i in range(30):
            producer.produce("inter-broker", f"txn-{i}".encode(), partition=i % 3)
        producer.commit_transaction(30)
        consumer = Consumer({**config, "group.id": f"committed-{protocol}", "auto.offset.reset": "earliest",
                             "isolation.level": "read_committed", "enable.auto.commit": False})
        consumer.subscribe(["inter-broker"])
        committed, deadline = [], time.time() + 60
        while len(committed) < 30 and time.time() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None and message.value().startswith(b"txn-"):
                committed.append(message.value())
        consumer.close()
        assert sorted(committed) == sorted(f"txn-{i}".encode() for i in range(30)), "read_committed sees the commit"
    finally:
        crashed = cluster.crashed()
        cluster.stop()
        assert not crashed, f"brokers exited by themselves: {crashed}"
