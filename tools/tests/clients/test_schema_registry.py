"""The built-in Schema Registry against real clients: confluent-kafka's serializers and
SchemaRegistryClient, and raw HTTP for every endpoint and its error codes. Schemas live in
the broker's `_schemas` topic, so they survive restarts and kills."""
import collections
import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import free_port

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
USER_V1 = {"type": "record", "name": "User", "namespace": "sluice.test",
           "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}


def with_field(schema, field):
    return {**schema, "fields": [*schema["fields"], field]}


class Registry:
    """Raw HTTP to the registry: (status, decoded JSON body, content type)."""

    def __init__(self, address):
        self.url = f"http://{address}"

    def __call__(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null"), response.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null"), error.headers["Content-Type"]

    def register(self, subject, schema, **extra):
        return self("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(schema), **extra})

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self("GET", "/subjects")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("the schema registry did not come up")


@pytest.fixture
def registry_broker(start_broker):
    address = f"127.0.0.1:{free_port()}"
    broker = start_broker("--cores", "2", "--schema-registry-listen", address)
    broker.registry = Registry(address).wait_ready()
    broker.registry_address = address
    return broker


def round_trip(broker, topic, serializer, deserializer, values):
    """Produces `values` serialized, consumes them back deserialized (in order: one partition)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.address})
    admin.create_topics([NewTopic(topic, 1)])[topic].result(30)
    context = SerializationContext(topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": broker.address})
    for value in values:
        producer.produce(topic, value=serializer(value, context))
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": broker.address, "group.id": f"{topic}-readers",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    received = []
    deadline = time.time() + 30
    while len(received) < len(values) and time.time() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            assert message.value()[0] == 0, "Confluent's wire format: magic byte 0, then the schema id"
            received.append(deserializer(message.value(), context))
    consumer.close()
    return received


def test_avro_values_go_through_sluice_with_confluents_serializers(registry_broker):
    client = SchemaRegistryClient({"url": registry_broker.registry.url})
    users = [{"name": f"user-{i}", "age": 20 + i} for i in range(50)]
    received = round_trip(registry_broker, "users", AvroSerializer(client, json.dumps(USER_V1)),
                          AvroDeserializer(client), users)
    assert received == users
    assert client.get_subjects() == ["users-value"]
    registered = client.get_latest_version("users-value")
    assert registered.version == 1 and json.loads(registered.schema.schema_str)["name"] == "User"


def test_json_values_go_through_sluice_with_confluents_serializers(registry_broker):
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
    client = SchemaRegistryClient({"url": registry_broker.registry.url})
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
              "properties": {"id": {"type": "integer"}, "item": {"type": "string"},
                             "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["id"]}
    orders = [{"id": i, "item": f"thing-{i}", "tags": ["a"] * (i % 3)} for i in range(30)]
    received = round_trip(registry_broker, "orders-json", JSONSerializer(json.dumps(schema), client),
                          JSONDeserializer(None, schema_registry_client=client), orders)
    assert received == orders
    registered = client.get_latest_version("orders-json-value")
    assert registered.schema.schema_type == "JSON" and json.loads(registered.schema.schema_str) == schema
    with pytest.raises(Exception, match="required|id"):
        JSONSerializer(json.dumps(schema), client)({"item": "no id"}, SerializationContext("orders-json",
                                                                                             MessageField.VALUE))


def protobuf_user_class():
    """A generated-code equivalent built at run time (no protoc): message sluice.test.User."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="sluice_test_user.proto", package="sluice.test", syntax="proto3")
    message = file.message_type.add(name="User")
    message.field.add(name="name", number=1, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(name="age", number=2, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    message.field.add(name="emails", number=3, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sluice.test.User"))


def test_protobuf_values_go_through_sluice_with_confluents_serializers(registry_broker):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    client = SchemaRegistryClient({"url": registry_broker.registry.url})
    user = protobuf_user_class()
    users = [user(name=f"user-{i}", age=i, emails=[f"u{i}@example.com"] * (i % 2)) for i in range(30)]
    serializer = ProtobufSerializer(user, client, {"use.deprecated.format": False})
    deserializer = ProtobufDeserializer(user, {"use.deprecated.format": False}, client)
    received = round_trip(registry_broker, "users-proto", serializer, deserializer, users)
    assert received == users
    # The serializer sent a base64 descriptor; the registry keeps .proto text and gives the
    # descriptor back when asked for `format=serialized`.
    status, version, _ = registry_broker.registry("GET", "/subjects/users-proto-value/versions/1")
    assert status == 200 and version["schemaType"] == "PROTOBUF"
    assert "message User" in version["schema"] and "package sluice.test" in version["schema"], version["schema"]
    serialized = registry_broker.registry("GET", f"/schemas/ids/{version['id']}?format=serialized")[1]["schema"]
    assert ";" not in serialized and serialized != version["schema"]


def test_backward_evolution_takes_defaults_and_refuses_required_fields_naming_them(registry_broker):
    registry = registry_broker.registry
    assert registry.register("people", USER_V1)[0] == 200
    with_default = with_field(USER_V1, {"name": "email", "type": "string", "default": ""})
    status, body, _ = registry.register("people", with_default)
    assert status == 200 and body["id"] == 2

    required = with_field(with_default, {"name": "phone", "type": "string"})
    status, body, content_type = registry.register("people", required)
    assert (status, body["error_code"], content_type) == (409, 409, CONTENT_TYPE)
    assert "phone" in body["message"]
    status, body, _ = registry("POST", "/compatibility/subjects/people/versions/latest?verbose=true",
                               {"schema": json.dumps(required)})
    assert status == 200 and body["is_compatible"] is False
    assert any("phone" in message for message in body["messages"]), body

    assert registry("PUT", "/config/people", {"compatibility": "NONE"}) == (200, {"compatibility": "NONE"},
                                                                             CONTENT_TYPE)
    assert registry.register("people", required)[0] == 200
    assert registry("GET", "/subjects/people/versions")[1] == [1, 2, 3]


def test_transitive_levels_check_every_earlier_version(registry_broker):
    registry = registry_broker.registry
    v1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
    v2 = {"type": "record", "name": "R", "fields": []}
    v3 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string", "default": ""}]}
    registry("PUT", "/config/evolving", {"compatibility": "BACKWARD_TRANSITIVE"})
    assert registry.register("evolving", v1)[0] == 200
    assert registry.register("evolving", v2)[0] == 200, "v2 reads v1's data: it ignores a"
    # v3 reads v2's data (a takes its default) but not v1's (a was an int).
    status, body, _ = registry.register("evolving", v3)
    assert status == 409 and "version 1" in body["message"] and "version 2" not in body["message"], body
    registry("PUT", "/config/evolving", {"compatibility": "BACKWARD"})
    assert registry("POST", "/compatibility/subjects/evolving/versions", {"schema": json.dumps(v3)})[1] == \
        {"is_compatible": True}
    assert registry.register("evolving", v3)[0] == 200
    registry("PUT", "/config/evolving", {"compatibility": "FULL_TRANSITIVE"})
    status, body, _ = registry("POST", "/compatibility/subjects/evolving/versions?verbose=true",
                               {"schema": json.dumps(v1)})
    assert body["is_compatible"] is False and body["messages"], body


def test_schemas_ids_configs_and_modes_survive_sigterm_and_sigkill(registry_broker, start_broker):
    registry = registry_broker.registry
    ids = {}
    for n in range(3):
        schema = {"type": "record", "name": f"T{n}", "fields": [{"name": "x", "type": "int"}]}
        ids[n] = registry.register(f"topic-{n}-value", schema)[1]["id"]
    registry("PUT", "/config", {"compatibility": "FULL"})
    registry("PUT", "/config/topic-0-value", {"compatibility": "NONE"})
    registry("PUT", "/mode/topic-2-value", {"mode": "READONLY"})
    registry("DELETE", "/subjects/topic-1-value")
    before = {path: registry("GET", path)[:2] for path in [
        "/subjects", "/subjects?deleted=true", "/config", "/config/topic-0-value", "/mode/topic-2-value",
        "/schemas/ids/1", "/schemas/ids/2", "/schemas/ids/3", "/subjects/topic-0-value/versions/1",
        "/subjects/topic-1-value/versions?deleted=true"]}
    broker = registry_broker
    for sig in (signal.SIGTERM, signal.SIGKILL):
        broker.stop(sig)
        broker = start_broker("--cores", "2", "--schema-registry-listen", registry_broker.registry_address,
                              data_dir=registry_broker.data_dir)
        Registry(registry_broker.registry_address).wait_ready()
        # The registry answers before it has read its topic back: wait for what it had.
        deadline = time.time() + 30
        while registry("GET", "/subjects")[1] != before["/subjects"][1] and time.time() < deadline:
            time.sleep(0.1)
        after = {path: registry("GET", path)[:2] for path in before}
        assert after == before, f"after {sig.name}"
    fresh = {"type": "record", "name": "Fresh", "fields": [{"name": "y", "type": "long"}]}
    status, body, _ = registry.register("fresh-value", fresh)
    assert status == 200 and body["id"] == max(ids.values()) + 1, "ids go on past the ones before the restarts"
    status, body, _ = registry.register("topic-2-value", fresh)
    assert (status, body["error_code"]) == (422, 42205), "READONLY survived"


def test_eight_clients_registering_the_same_schema_get_one_id(registry_broker):
    registry = registry_broker.registry
    schema = {"type": "record", "name": "Shared", "fields": [{"name": "v", "type": "string"}]}
    results, barrier = [], threading.Barrier(8)

    def register(n):
        barrier.wait()
        results.append(registry.register(f"shared-{n % 2}", schema))

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [status for status, _, _ in results] == [200] * 8
    assert len({body["id"] for _, body, _ in results}) == 1, results
    assert registry("GET", "/subjects/shared-0/versions")[1] == [1]
    assert registry("GET", "/subjects/shared-1/versions")[1] == [1]


def test_subject_and_version_endpoints_with_their_error_codes(registry_broker):
    registry = registry_broker.registry
    client = SchemaRegistryClient({"url": registry.url})
    schema_id = client.register_schema("orders-value", Schema(json.dumps(USER_V1), "AVRO"))
    assert client.register_schema("orders-value", Schema(json.dumps(USER_V1), "AVRO")) == schema_id
    assert client.register_schema("other-value", Schema(json.dumps(USER_V1), "AVRO")) == schema_id, \
        "the same schema under another subject keeps its id"

    status, body, content_type = registry("GET", "/subjects/orders-value/versions/1")
    assert status == 200 and content_type == CONTENT_TYPE
    assert {k: body[k] for k in ("subject", "version", "id")} == {"subject": "orders-value", "version": 1,
                                                                  "id": schema_id}
    assert registry("GET", "/subjects/orders-value/versions/latest/schema")[1] == USER_V1
    assert registry("GET", f"/schemas/ids/{schema_id}")[1]["schema"] == body["schema"]
    assert registry("GET", f"/schemas/ids/{schema_id}/subjects")[1] == ["orders-value", "other-value"]
    assert registry("GET", f"/schemas/ids/{schema_id}/versions")[1] == [
        {"subject": "orders-value", "version": 1}, {"subject": "other-value", "version": 1}]
    assert registry("GET", "/schemas/types")[1] == ["AVRO", "JSON", "PROTOBUF"]
    assert [s["subject"] for s in registry("GET", "/schemas")[1]] == ["orders-value", "other-value"]
    assert registry("GET", "/contexts")[1] == ["."]
    found = registry("POST", "/subjects/orders-value", {"schema": json.dumps(USER_V1)})
    assert found[0] == 200 and found[1]["id"] == schema_id and found[1]["version"] == 1
    spaced = json.dumps(USER_V1, indent=4)
    assert registry("POST", "/subjects/orders-value?normalize=true", {"schema": spaced})[1]["id"] == schema_id

    def error(method, path, body=None, raw=None):
        status, answer, content_type = registry(method, path, body, raw)
        assert content_type == CONTENT_TYPE, (path, content_type)
        return status, answer["error_code"]

    assert registry("GET", f"/schemas/ids/{schema_id}?subject=orders-value")[0] == 200
    assert error("GET", f"/schemas/ids/{schema_id}?subject=nope") == (404, 40403)
    assert registry("GET", f"/schemas/ids/{schema_id}/schema")[1] == USER_V1
    assert error("GET", "/subjects/nope/versions") == (404, 40401)
    assert error("GET", "/subjects/orders-value/versions/9") == (404, 40402)
    assert error("GET", "/schemas/ids/999") == (404, 40403)
    assert error("GET", "/subjects/orders-value/versions/zero") == (422, 42202)
    assert error("POST", "/subjects/orders-value", {"schema": '"long"'}) == (404, 40403)
    assert error("POST", "/subjects/x/versions", {"schema": '{"type": "recod"}'}) == (422, 42201)
    assert error("POST", "/subjects/x/versions", {"schema": "{"}) == (422, 42201)
    assert error("POST", "/subjects/x/versions", {"schema": '"int"', "schemaType": "XML"}) == (422, 42201)
    assert error("POST", "/subjects/x/versions", raw=b"not json") == (400, 400)
    assert error("POST", "/subjects/x/versions", raw=b"x" * (5 << 20))[0] == 413
    assert error("PUT", "/config", {"compatibility": "SIDEWAYS"}) == (422, 42203)
    assert error("PUT", "/mode", {"mode": "SOMETIMES"}) == (422, 42204)
    assert error("GET", "/config/orders-value") == (404, 40408)
    assert error("GET", "/mode/orders-value") == (404, 40409)
    assert registry("GET", "/config/orders-value?defaultToGlobal=true")[1] == {"compatibilityLevel": "BACKWARD"}
    assert error("GET", "/no/such/path") == (404, 404)
    # Newer clients send nulls for what they leave out.
    nulls = registry("POST", "/subjects/nulls/versions",
                     {"schema": '"string"', "schemaType": None, "references": None, "metadata": None,
                      "ruleSet": None})
    assert nulls[0] == 200

    # Deletion: soft first, then permanent; each out of order is refused.
    assert error("DELETE", "/subjects/orders-value?permanent=true") == (404, 40405)
    assert registry("DELETE", "/subjects/orders-value")[1] == [1]
    assert error("DELETE", "/subjects/orders-value") == (404, 40404)
    assert error("GET", "/subjects/orders-value/versions") == (404, 40401)
    assert registry("GET", "/subjects/orders-value/versions?deleted=true")[1] == [1]
    assert registry("GET", f"/schemas/ids/{schema_id}")[0] == 200, "a soft-deleted version's id stays readable"
    assert registry("DELETE", "/subjects/orders-value?permanent=true")[1] == [1]
    assert registry("GET", "/subjects?deleted=true")[1] == ["nulls", "other-value"]
    assert registry("DELETE", "/subjects/other-value/versions/1")[1] == 1
    assert error("DELETE", "/subjects/other-value/versions/1") == (404, 40406)
    assert registry("DELETE", "/subjects/other-value/versions/1?permanent=true")[1] == 1
    assert error("GET", f"/schemas/ids/{schema_id}") == (404, 40403), "no version uses the id any more"

    # A referenced version cannot be deleted.
    address = {"type": "record", "name": "Address", "namespace": "sluice.test",
               "fields": [{"name": "city", "type": "string"}]}
    assert registry.register("address", address)[0] == 200
    person = {"type": "record", "name": "Person", "namespace": "sluice.test",
              "fields": [{"name": "home", "type": "sluice.test.Address"}]}
    refs = [{"name": "sluice.test.Address", "subject": "address", "version": 1}]
    status, body, _ = registry.register("person", person, references=refs)
    assert status == 200, body
    assert registry("GET", "/subjects/address/versions/1/referencedby")[1] == [body["id"]]
    assert error("DELETE", "/subjects/address/versions/1") == (422, 42206)
    assert registry.register("person2", person)[1]["error_code"] == 42201, "unknown without its reference"
    bad_ref = [{"name": "x", "subject": "nowhere", "version": 1}]
    assert registry.register("person3", person, references=bad_ref)[1]["error_code"] == 42201


def test_modes_config_deletes_and_import(registry_broker):
    registry = registry_broker.registry
    assert registry("GET", "/mode")[1] == {"mode": "READWRITE"}
    registry.register("kept", {"type": "string"})
    status, body, _ = registry("PUT", "/mode", {"mode": "IMPORT"})
    assert (status, body["error_code"]) == (422, 42205), "IMPORT over existing subjects needs force"
    assert registry("PUT", "/mode/imported", {"mode": "IMPORT"})[0] == 200
    status, body, _ = registry("POST", "/subjects/imported/versions",
                               {"schema": '"long"', "id": 100, "version": 5})
    assert (status, body) == (200, {"id": 100})
    assert registry("GET", "/subjects/imported/versions/5")[1]["id"] == 100
    status, body, _ = registry("POST", "/subjects/imported/versions", {"schema": '"int"', "id": 100, "version": 6})
    assert (status, body["error_code"]) == (422, 42207), "id 100 holds another schema"
    assert registry("DELETE", "/mode/imported")[1] == {"mode": "IMPORT"}
    status, body, _ = registry("POST", "/subjects/kept/versions", {"schema": '"long"', "id": 7})
    assert (status, body["error_code"]) == (422, 42205), "ids are chosen by the registry outside IMPORT"
    assert registry.register("after-import", {"type": "record", "name": "A", "fields": []})[1]["id"] == 101

    registry("PUT", "/mode", {"mode": "READONLY"})
    assert registry.register("kept", {"type": "int"})[1]["error_code"] == 42205
    assert registry("DELETE", "/subjects/kept")[1]["error_code"] == 42205
    assert registry("DELETE", "/mode")[1] == {"mode": "READONLY"}
    assert registry("GET", "/mode")[1] == {"mode": "READWRITE"}

    registry("PUT", "/config", {"compatibility": "FULL_TRANSITIVE"})
    assert registry("GET", "/config")[1] == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert registry("DELETE", "/config")[1] == {"compatibilityLevel": "FULL_TRANSITIVE"}
    assert registry("GET", "/config")[1] == {"compatibilityLevel": "BACKWARD"}
    registry("PUT", "/config/kept", {"compatibility": "none"})
    assert registry("GET", "/config/kept")[1] == {"compatibilityLevel": "NONE"}
    assert registry("DELETE", "/config/kept")[1] == {"compatibilityLevel": "NONE"}
    assert registry("DELETE", "/config/kept")[1]["error_code"] == 40408


def test_malformed_requests_leave_the_registry_serving(registry_broker):
    registry = registry_broker.registry
    for raw in [b"", b"[]", b"{\"schema\": 5}", b"\xff\xfe", b"{\"schema\": \"\"}", json.dumps({"schema": "x" * 100000}).encode()]:
        status, body, _ = registry("POST", "/subjects/junk/versions", raw=raw)
        assert 400 <= status < 500 and "error_code" in body, (raw[:20], status, body)
    for path in ["/subjects/%00/versions", "/schemas/ids/-1", "/schemas/ids/abc", "/subjects/a/versions/99999999999"]:
        assert 400 <= registry("GET", path)[0] < 500, path
    assert registry("GET", "/subjects")[1] == []
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": registry_broker.address})
    assert "_schemas" not in admin.list_topics(timeout=10).topics, "nothing invalid reached the topic"
    with pytest.raises(SchemaRegistryError) as refused:
        SchemaRegistryClient({"url": registry.url}).get_schema(12345)
    assert refused.value.error_code == 40403


def test_sluice_schema_cli_registers_lists_gets_checks_and_deletes(registry_broker, tmp_path):
    import subprocess
    from conftest import SLUICE

    def sluice(*args, stdin=None):
        result = subprocess.run([str(SLUICE), "schema", "--registry", registry_broker.registry.url, *args],
                                input=stdin, capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout, result.stderr

    v1 = tmp_path / "v1.avsc"
    v1.write_text(json.dumps(USER_V1))
    code, out, _ = sluice("register", "cli-value", str(v1))
    assert (code, out.strip()) == (0, "1")
    required = with_field(USER_V1, {"name": "phone", "type": "string"})
    code, out, err = sluice("compat", "cli-value", "-", stdin=json.dumps(required))
    assert code != 0 and "phone" in err, err
    optional = with_field(USER_V1, {"name": "phone", "type": ["null", "string"], "default": None})
    assert sluice("compat", "cli-value", "-", stdin=json.dumps(optional))[:2] == (0, "compatible\n")
    assert sluice("register", "cli-value", "-", stdin=json.dumps(optional))[:2] == (0, "2\n")
    code, out, _ = sluice("list")
    assert code == 0 and out.splitlines()[1].split() == ["cli-value", "1,2", "2", "AVRO"], out
    code, out, _ = sluice("get", "cli-value", "--version", "1")
    assert code == 0 and out.startswith("# subject cli-value version 1 id 1")
    assert json.loads(out.split("\n", 1)[1]) == USER_V1
    assert json.loads(sluice("get", "--id", "2")[1]) == optional
    code, _, err = sluice("get", "nope")
    assert code != 0 and "40401" in err
    assert sluice("delete", "cli-value", "--version", "2")[:2] == (0, "deleted 2\n")
    assert sluice("delete", "cli-value")[:2] == (0, "deleted [1]\n")
    assert sluice("delete", "cli-value", "--permanent")[:2] == (0, "deleted [1,2]\n")
    unreachable = subprocess.run([str(SLUICE), "schema", "--registry", f"http://127.0.0.1:{free_port()}", "list"],
                                 capture_output=True, text=True, timeout=60)
    assert unreachable.returncode != 0 and "cannot reach the schema registry" in unreachable.stderr


def test_schemathesis_drives_the_api_from_our_openapi_document_and_the_broker_keeps_serving(registry_broker):
    """Random and malformed requests for every operation of registry/openapi.yaml: no 5xx,
    every status and body as documented, Confluent's content type throughout."""
    import subprocess
    import sys
    from pathlib import Path
    from conftest import ROOT
    registry = registry_broker.registry
    registry.register("orders-value", USER_V1)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(schemathesis), "run", str(ROOT / "registry" / "openapi.yaml"), "--url", registry.url,
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         # The coverage phase trips over a hypothesis/CPython AST error of its own here.
         "--phases", "examples,fuzzing", "--max-examples", "40", "--seed", "14", "--workers", "2"],
        capture_output=True, text=True, timeout=600, cwd=registry_broker.data_dir.parent)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "passed" in result.stdout and " 0 passed" not in result.stdout, result.stdout[-2000:]
    assert registry("GET", "/subjects")[0] == 200
    assert registry.register("after-fuzzing", {"type": "string"})[0] == 200


def test_every_broker_of_a_cluster_serves_the_registry_and_ids_stay_unique(tmp_path):
    """Three brokers, each with its registry: registrations through all three at once (the
    two that do not lead `_schemas` forward their writes to the one that does), and every
    broker ends with the same subjects, versions and ids, none handed out twice."""
    from cluster import Cluster
    cluster = Cluster(tmp_path)
    registries = {}
    for node, broker in cluster.brokers.items():
        address = f"127.0.0.1:{free_port()}"
        broker.flags = (*broker.flags, "--schema-registry-listen", address)
        registries[node] = Registry(address)
    cluster.start()
    try:
        for registry in registries.values():
            registry.wait_ready()
        results, barrier = [], threading.Barrier(len(registries))

        def register_through(node):
            barrier.wait()
            for n in range(4):
                # A schema of this broker's own, and one every broker registers.
                own = {"type": "record", "name": f"Own{node}x{n}", "fields": [{"name": "a", "type": "int"}]}
                shared = {"type": "record", "name": "Shared", "fields": [
                    {"name": f"f{i}", "type": "int", "default": 0} for i in range(n + 1)]}
                for subject, schema in ((f"own-{node}-{n}", own), ("shared", shared)):
                    status, body, _ = registries[node].register(subject, schema, schemaType="AVRO")
                    results.append((node, subject, json.dumps(schema, sort_keys=True), status, body))

        threads = [threading.Thread(target=register_through, args=(node,)) for node in registries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert all(status == 200 for _, _, _, status, _ in results), [r for r in results if r[3] != 200][:3]
        ids_by_schema = collections.defaultdict(set)
        for _, _, schema, _, body in results:
            ids_by_schema[schema].add(body["id"])
        assert all(len(ids) == 1 for ids in ids_by_schema.values()), "one schema, one id"
        assert len({next(iter(ids)) for ids in ids_by_schema.values()}) == len(ids_by_schema), \
            "no id handed out twice"
        # Every broker converges on the same registry.
        views = {}
        deadline = time.time() + 30
        while time.time() < deadline:
            views = {node: registry("GET", "/schemas")[1] for node, registry in registries.items()}
            if len({json.dumps(view, sort_keys=True) for view in views.values()}) == 1:
                break
            time.sleep(0.2)
        assert len({json.dumps(view, sort_keys=True) for view in views.values()}) == 1, views
        shared_versions = registries[1]("GET", "/subjects/shared/versions")[1]
        assert shared_versions == list(range(1, 5)), shared_versions
    finally:
        crashed = cluster.crashed()
        cluster.stop(signal.SIGKILL)
        assert not crashed, f"brokers exited by themselves: {crashed}"


def test_json_schema_and_protobuf_references_resolve_through_other_subjects(registry_broker):
    registry = registry_broker.registry
    address = {"$id": "address.json", "type": "object", "properties": {"city": {"type": "string"}}}
    status, body, _ = registry("POST", "/subjects/address-json/versions",
                               {"schema": json.dumps(address), "schemaType": "JSON"})
    assert status == 200, body
    person = {"type": "object", "properties": {"home": {"$ref": "address.json"}}}
    refs = [{"name": "address.json", "subject": "address-json", "version": 1}]
    status, body, _ = registry("POST", "/subjects/person-json/versions",
                               {"schema": json.dumps(person), "schemaType": "JSON", "references": refs})
    assert status == 200, body
    assert registry("GET", "/subjects/address-json/versions/1/referencedby")[1] == [body["id"]]
    status, body, _ = registry("POST", "/subjects/person-json-2/versions",
                               {"schema": json.dumps(person), "schemaType": "JSON"})
    assert (status, body["error_code"]) == (422, 42201), "the $ref resolves only through a reference"

    address_proto = 'syntax = "proto3"; package acme; message Address { string city = 1; }'
    assert registry("POST", "/subjects/address-proto/versions",
                    {"schema": address_proto, "schemaType": "PROTOBUF"})[0] == 200
    person_proto = ('syntax = "proto3"; package acme; import "acme/address.proto"; '
                    'message Person { string name = 1; Address home = 2; }')
    proto_refs = [{"name": "acme/address.proto", "subject": "address-proto", "version": 1}]
    status, body, _ = registry("POST", "/subjects/person-proto/versions",
                               {"schema": person_proto, "schemaType": "PROTOBUF", "references": proto_refs})
    assert status == 200, body
    version = registry("GET", "/subjects/person-proto/versions/latest")[1]
    assert version["schemaType"] == "PROTOBUF" and version["references"] == proto_refs
    status, body, _ = registry("POST", "/subjects/person-proto-2/versions",
                               {"schema": person_proto, "schemaType": "PROTOBUF"})
    assert (status, body["error_code"]) == (422, 42201), body
    # Protobuf evolution under the default BACKWARD: a field changing wire type is refused.
    changed = person_proto.replace("string name = 1", "int64 name = 1")
    status, body, _ = registry("POST", "/subjects/person-proto/versions",
                               {"schema": changed, "schemaType": "PROTOBUF", "references": proto_refs})
    assert status == 409 and "name" in body["message"], body
