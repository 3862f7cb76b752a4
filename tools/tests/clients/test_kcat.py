"""kcat (Debian's, librdkafka 2.0.2) against a real broker."""
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is installed by `make test`")


def kcat(broker, *args, stdin=None):
    return subprocess.run(["kcat", "-b", broker.address, *args], input=stdin, capture_output=True, timeout=120,
                          check=True).stdout


def test_kcat_lists_metadata_produces_and_consumes_byte_identical(broker):
    lines = b"".join(b"key-%d\tvalue \x01 %d\n" % (i, i) for i in range(10_000))
    kcat(broker, "-P", "-t", "kc", "-K", "\t", "-H", "source=kcat", "-H", "n=1", stdin=lines)
    listing = kcat(broker, "-L").decode()
    assert "broker 0 at " + broker.address in listing
    assert 'topic "kc" with 1 partitions' in listing

    everything = kcat(broker, "-C", "-t", "kc", "-e", "-q", "-K", "\t")
    assert everything == lines
    with_headers = kcat(broker, "-C", "-t", "kc", "-e", "-q", "-f", "%k|%h|%o\n").decode().splitlines()
    assert with_headers[0] == "key-0|source=kcat,n=1|0"
    assert with_headers[-1] == "key-9999|source=kcat,n=1|9999"

    tail = kcat(broker, "-C", "-t", "kc", "-o", "9990", "-e", "-q", "-K", "\t")
    assert tail == b"".join(b"key-%d\tvalue \x01 %d\n" % (i, i) for i in range(9990, 10_000))
