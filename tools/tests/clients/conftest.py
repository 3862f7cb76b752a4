"""Fixtures for the client compatibility tests: a real `sluice serve` process on a free
loopback port with its own data directory, stopped (SIGTERM, then SIGKILL) afterwards.

A broker that fails by itself (a crash, an abort, a panic) fails the test that started it, with the
end of its log: a crash must never pass as a client-side error or go unseen."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SLUICE = Path(os.environ.get("SLUICE_BIN", ROOT / "target" / "release" / "sluice")).resolve()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, data_dir, *flags, host="127.0.0.1", port=None, wrapper=(), listen=True):
        """`wrapper` runs the broker inside something (`ip netns exec NS`), `host` is the
        address it listens on there. `listen=False` leaves out `--listen` (the flags name
        `--listeners`, one of them on `port`)."""
        self.data_dir = Path(data_dir).resolve()
        self.flags = flags
        self.host = host
        self.port = port or free_port()
        self.address = f"{host}:{self.port}"
        self.wrapper = list(wrapper)
        self.listen = ("--listen", self.address) if listen else ()
        self.process = None
        self.stopped = False
        self.log_path = Path(data_dir).parent / f"broker-{self.port}.log"

    def start(self):
        self.stopped = False
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*self.wrapper, str(SLUICE), "serve", *self.listen, "--data-dir", str(self.data_dir), *self.flags],
            stdout=log, stderr=log, cwd=self.data_dir.parent, env={**os.environ, "RUST_LOG": os.environ.get("SLUICE_TEST_LOG", "info"), "NO_COLOR": "1"})
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.process.poll() is None, f"broker exited: {self.log()}"
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"broker did not start: {self.log()}")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.stopped = True
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exited_by_itself(self):
        """The exit status if the broker failed (non-zero status or a signal) without the
        test stopping it, else None. A clean exit 0 is one the test asked for (admin shutdown)."""
        if self.process is None or self.stopped:
            return None
        status = self.process.poll()
        return status if status else None

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])


@pytest.fixture
def start_broker(tmp_path):
    brokers = []

    def start(*flags, data_dir=None):
        broker = Broker(data_dir or tmp_path / "data", *flags).start()
        brokers.append(broker)
        return broker

    yield start
    crashed = [(broker, broker.exited_by_itself()) for broker in brokers]
    for broker in brokers:
        broker.stop(signal.SIGKILL)
    for broker, status in crashed:
        if status is not None:
            pytest.fail(f"broker {broker.address} exited by itself with status {status}:\n{broker.log_tail()}")


@pytest.fixture
def broker(start_broker):
    return start_broker("--cores", "2")
