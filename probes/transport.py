"""An httpx transport for probes: one fresh connection per request, timed at the socket.

Why not httpx's default transport: at a fan-out of 200 probes its connection pool re-scans every connection for
each request (O(n^2)) and takes an anyio lock per step; on one event loop that CPU shows up as ~150 ms of extra
"latency" on every probe (bench/probe_fanout.py). A probe that measures its own queueing is lying. Here each
request opens its own connection (what a user pays: connect and TLS included), speaks HTTP/1.1 through h11, and
reads the clock at the socket events: connect done, TLS done, first response byte, end of body. The response is
read by an `asyncio.Protocol`, so those stamps are taken in the loop's I/O callbacks, as the bytes arrive, and not
when the probe's task is next scheduled (behind every other probe answered in the same instant). Latency is the sum
of the network phases (connect, TLS, request sent -> last byte): the moments between phases when this probe waits
for the loop to get round to it are our queueing, not the service's time, and are left out.

Not supported, on purpose: proxies (probes run next to the services they watch), HTTP/2, keep-alive.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from functools import cache

import h11
import httpx

from probes.failures import ProbeFailure

# Enough of a body to find a health marker; a health endpoint that streams megabytes is not read to the end.
BODY_LIMIT = 64 * 1024


@cache
def default_ssl_context() -> ssl.SSLContext:
    """Return the process's one verifying TLS context: building one loads the CA bundle, ~30 ms of CPU."""
    return ssl.create_default_context()


class ProbeProtocolError(ProbeFailure):
    """The server answered something that is not HTTP/1.1."""


class TimedTransport(httpx.AsyncBaseTransport):
    """Send each request on its own connection and attach phase timings (ms) as `extensions["timings"]`."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context or default_ssl_context()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        secure = url.scheme == "https"
        port = url.port or (443 if secure else 80)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        reader = _ResponseReader(loop)
        transport, _ = await loop.create_connection(lambda: reader, url.host, port)
        assert reader.connected_at is not None
        connected = time.perf_counter()
        timings = {"connect_ms": (reader.connected_at - started) * 1000}
        try:
            if secure:
                tls = await loop.start_tls(transport, reader, self._ssl_context, server_hostname=url.host)
                if tls is None:  # the peer closed during the handshake
                    raise ProbeProtocolError("the server closed the connection during the TLS handshake")
                transport = tls
                timings["tls_ms"] = (time.perf_counter() - connected) * 1000
            reader.transport = transport
            connection = reader.connection
            sent_at = time.perf_counter()
            transport.write(connection.send(_to_h11_request(request)) + connection.send(h11.EndOfMessage()))
            await reader.done
        finally:
            transport.close()
        assert reader.response is not None and reader.first_byte_at is not None and reader.ended_at is not None
        before_request = timings["connect_ms"] + timings.get("tls_ms", 0.0)
        timings["ttfb_ms"] = before_request + (reader.first_byte_at - sent_at) * 1000
        timings["total_ms"] = before_request + (reader.ended_at - sent_at) * 1000
        return httpx.Response(
            status_code=reader.response.status_code,
            headers=[(name, value) for name, value in reader.response.headers],
            content=b"".join(reader.chunks)[:BODY_LIMIT],
            request=request,
            extensions={"timings": timings, "http_version": b"HTTP/1.1"},
        )


class _ResponseReader(asyncio.Protocol):
    """Parse one HTTP/1.1 response as its bytes arrive, stamping the first byte and the end of the body."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = h11.Connection(h11.CLIENT)
        self.done: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.BaseTransport | None = None
        self.response: h11.Response | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.received = b""  # the first bytes, to quote an answer that is not HTTP
        self.connected_at: float | None = None
        self.first_byte_at: float | None = None
        self.ended_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connected_at = self.connected_at or time.perf_counter()  # TLS calls it again: keep the TCP moment

    def data_received(self, data: bytes) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
        if len(self.received) < 64:
            self.received += data[:64]
        self.connection.receive_data(data)
        self._read_events()

    def eof_received(self) -> bool:
        self._finish_closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.done.done():
            self.done.set_exception(exc)
        self._finish_closed()

    def _finish_closed(self) -> None:
        if self.done.done():
            return
        if self.response is None:
            if self.first_byte_at is None:
                self._fail(ProbeProtocolError("the server closed the connection without answering"))
            else:
                head = self.received[:40].decode("ascii", "replace").strip()
                self._fail(ProbeProtocolError(f"not an HTTP/1.1 answer (got {head!r})"))
            return
        self.connection.receive_data(b"")  # tells h11 the peer closed: a body delimited by the close ends here
        self._read_events()
        if not self.done.done():
            self._fail(ProbeProtocolError("the server closed the connection in the middle of its answer"))

    def _read_events(self) -> None:
        while not self.done.done():
            try:
                event = self.connection.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(ProbeProtocolError(f"not an HTTP/1.1 answer ({exc})"))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self.response = event
            elif isinstance(event, h11.Data):
                self.chunks.append(bytes(event.data))
                self.size += len(event.data)
                if self.size >= BODY_LIMIT:
                    self._end()
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._end()

    def _end(self) -> None:
        self.ended_at = time.perf_counter()
        self.done.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def _to_h11_request(request: httpx.Request) -> h11.Request:
    headers = [(name, value) for name, value in request.headers.raw if name.lower() != b"connection"]
    headers.append((b"Connection", b"close"))
    return h11.Request(method=request.method, target=request.url.raw_path, headers=headers)
