"""Run an ASGI app under a real uvicorn server on 127.0.0.1, port 0, in this loop or in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp


def bind_loopback(port: int = 0) -> socket.socket:
    """Return a listening-ready socket on 127.0.0.1 (port 0: the kernel picks a free one)."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP. Without it a
    # response written in two parts (uvicorn sends the head, then the body) waits for the client's delayed ACK:
    # 40 ms per answer, which `stagebot serve` (uvicorn binds host:port itself) never pays.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@dataclass
class RunningServer:
    server: uvicorn.Server
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class _DenialNoiseFilter(logging.Filter):
    """Drop uvicorn's false alarm after a WebSocket denial response.

    uvicorn's sansio WebSocket protocol sends the denial (`websocket.http.response.*`) correctly, then logs
    "ASGI callable returned without completing handshake" because it only checks `handshake_complete`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "returned without completing handshake" not in record.getMessage()


_denial_filter = _DenialNoiseFilter()


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to whoever owns the loop (the CLI's drain, pytest's Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(app: ASGIApp, lifespan: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on" if lifespan else "off", access_log=False, ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )  # fmt: skip
    server = _EmbeddedServer(config)
    logging.getLogger("uvicorn.error").addFilter(_denial_filter)
    return server


@contextlib.asynccontextmanager
async def serve_in_loop(app: ASGIApp, port: int = 0, *, lifespan: bool = False) -> AsyncIterator[RunningServer]:
    """Serve `app` as a task of the running loop until the block exits (with `lifespan`: run its startup/shutdown)."""
    sock = bind_loopback(port)
    server = _uvicorn(app, lifespan)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surface why it could not start
            await asyncio.sleep(0.005)
        yield RunningServer(server, sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, port: int = 0) -> Iterator[RunningServer]:
    """Serve `app` from a thread with its own loop (for synchronous callers: tests, benchmarks)."""
    sock = bind_loopback(port)
    server = _uvicorn(app)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server thread stopped before it started serving")
            threading.Event().wait(0.005)
        yield RunningServer(server, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
