"""Test certificates made with openssl (TLS tests and the security bench): a CA, a server
certificate for localhost and 127.0.0.1, a broker certificate that is both (brokers of a
cluster are each other's clients on an SSL listener), client certificates, and a second CA
whose client certificates the broker must refuse."""
import subprocess
from pathlib import Path

SERVER_EXTENSIONS = ("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                     "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
BROKER_EXTENSIONS = SERVER_EXTENSIONS.replace("serverAuth", "serverAuth,clientAuth")
CLIENT_EXTENSIONS = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory, name):
    """`name.pem` and `name.key`: a self-signed CA (webpki needs basicConstraints CA:TRUE)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory)


def make_cert(directory, ca, name, subject, extensions):
    """`name.pem` and `name.key` signed by `ca`; the extensions make it a v3 certificate."""
    (Path(directory) / f"{name}.ext").write_text(extensions)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", f"{name}.key", "-out", f"{name}.csr",
            cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=directory)


def make_all(directory):
    """ca, other-ca, server and broker (signed by ca), alice and bob (ca), mallory (other-ca)."""
    make_ca(directory, "ca")
    make_ca(directory, "other-ca")
    make_cert(directory, "ca", "server", "/CN=localhost", SERVER_EXTENSIONS)
    make_cert(directory, "ca", "broker", "/O=Sluice/CN=broker", BROKER_EXTENSIONS)
    make_cert(directory, "ca", "alice", "/O=Sluice/OU=Test/CN=alice", CLIENT_EXTENSIONS)
    make_cert(directory, "ca", "bob", "/O=Sluice/OU=Test/CN=bob", CLIENT_EXTENSIONS)
    make_cert(directory, "other-ca", "mallory", "/O=Sluice/OU=Test/CN=mallory", CLIENT_EXTENSIONS)
    return directory
