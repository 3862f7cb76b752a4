"""Security (issue 15) with real clients: TLS (server and mutual), SASL PLAIN and SCRAM, the
ACL authorizer, SCRAM users through the AdminClient, and refusals of everything else.

Certificates are made here with openssl: a CA, a server certificate for localhost and
127.0.0.1, a client certificate for alice, and a second CA with its own client certificate.
One broker per test module serves four listeners (PLAINTEXT, SSL with required client
certificates, SASL_SSL, SASL_PLAINTEXT) with the ACL authorizer on; `User:admin` and
alice's certificate principal are super users. Users are made over the admin socket, as a
newcomer bootstraps the first one."""
import shutil
import socket
import ssl
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

from certificates import make_all
from conftest import SLUICE, Broker, free_port

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


def frame(api_key, version, correlation, body=b"", client_id=b"raw"):
    header = struct.pack(">hhih", api_key, version, correlation, len(client_id)) + client_id
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_frame():
    return frame(18, 0, 1)


def read_frame(sock):
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


def test_before_authentication_only_api_versions_and_the_sasl_apis_are_answered(secure):
    metadata_v1 = frame(3, 1, 7, struct.pack(">i", -1))
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(api_versions_frame())
        assert struct.unpack(">i", read_frame(sock)[:4])[0] == 1, "ApiVersions is answered"
        sock.sendall(metadata_v1)
        assert sock.recv(4) == b"", "Metadata before authentication got an answer"
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM (33), the enabled list, then close.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 1, 2, struct.pack(">h", 6) + b"GSSAPI"))
        response = read_frame(sock)
        assert struct.unpack(">ih", response[:6]) == (2, 33)
        assert b"SCRAM-SHA-512" in response
        assert sock.recv(4) == b""
    # The pre-KIP-152 framing (SaslHandshake v0, then raw tokens): PLAIN as kafka-python 1.x did.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 0, 3, struct.pack(">h", 5) + b"PLAIN"))
        assert struct.unpack(">ih", read_frame(sock)[:6]) == (3, 0)
        token = b"\x00admin\x00" + ADMIN_PASSWORD.encode()
        sock.sendall(struct.pack(">i", len(token)) + token)
        assert recv_exactly(sock, 4) == b"\x00\x00\x00\x00", "PLAIN's empty final token"
        sock.sendall(metadata_v1)
        assert struct.unpack(">i", read_frame(sock)[:4])[0] == 7, "Metadata after authentication"
    # Raw framing with a wrong password: closed without an answer.
    with socket.create_connection(("127.0.0.1", secure.ports["SASL_PLAINTEXT"]), timeout=10) as sock:
        sock.sendall(frame(17, 0, 3, struct.pack(">h", 5) + b"PLAIN"))
        read_frame(sock)
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
        assert struct.unpack(">iih", read_frame(sock)[:10]) == (5, 0, 54)
