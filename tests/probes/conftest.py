"""Real local servers for the probe tests: the sandbox staging, plus raw sockets that misbehave on purpose."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sandbox.servers import RunningServer, serve_in_thread
from sandbox.staging import SandboxService, SandboxStaging


@pytest.fixture
def staging() -> SandboxStaging:
    return SandboxStaging(
        services={
            "ok": SandboxService(),
            "down": SandboxService(http="unavailable"),
            "broken": SandboxService(http="error"),
            "slow": SandboxService(http="slow", delay_ms=250),
            "reject": SandboxService(ws="reject"),
            "silent": SandboxService(ws="silent"),
            "api": SandboxService(http="unavailable"),
            "cascade": SandboxService(requires="api"),
        }
    )


@pytest.fixture
def server(staging: SandboxStaging) -> Iterator[RunningServer]:
    with serve_in_thread(staging.app()) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class RawServer:
    """A TCP server that accepts and then does one unhelpful thing: say nothing, or reset the connection."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.behaviour == "reset":
                # SO_LINGER with a zero timeout turns close() into an RST: the peer sees "connection reset".
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.recv(1024)
                conn.close()
            else:
                self.accepted.append(conn)  # silent: keep it open, never answer

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=2)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[RawServer]:
    raw = RawServer("silent")
    yield raw
    raw.close()


@pytest.fixture
def resetting_server() -> Iterator[RawServer]:
    raw = RawServer("reset")
    yield raw
    raw.close()
