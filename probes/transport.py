"""An httpx transport for probes: one fresh connection per request, timed at the socket.

Why not httpx's default transport: at a fan-out of 200 probes its connection pool re-scans every connection for
each request (O(n^2)) and takes an anyio lock per step; on one event loop that CPU shows up as ~150 ms of extra
"latency" on every probe (bench/probe_fanout.py). A probe that measures its own queueing is lying. Here each
request opens its own connection (what a user pays: connect and TLS included), speaks HTTP/1.1 through h11, and
reads the clock at the socket events: connect done, TLS done, first response byte, end of body.

Not supported, on purpose: proxies (probes run next to the services they watch), HTTP/2, keep-alive.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
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
        started = time.perf_counter()
        timings: dict[str, float] = {}

        def mark(name: str) -> None:
            timings[name] = (time.perf_counter() - started) * 1000

        reader, writer = await asyncio.open_connection(url.host, port)
        try:
            mark("connect_ms")
            if secure:
                await writer.start_tls(self._ssl_context, server_hostname=url.host)
                timings["tls_ms"] = (time.perf_counter() - started) * 1000 - timings["connect_ms"]
            connection = h11.Connection(h11.CLIENT)
            writer.write(connection.send(_to_h11_request(request)))
            writer.write(connection.send(h11.EndOfMessage()))
            response, body = await _read_response(connection, reader, lambda: mark("ttfb_ms"))
            mark("total_ms")
        finally:
            writer.close()
        return httpx.Response(
            status_code=response.status_code,
            headers=[(name, value) for name, value in response.headers],
            content=body,
            request=request,
            extensions={"timings": timings, "http_version": b"HTTP/1.1"},
        )


def _to_h11_request(request: httpx.Request) -> h11.Request:
    headers = [(name, value) for name, value in request.headers.raw if name.lower() != b"connection"]
    headers.append((b"Connection", b"close"))
    return h11.Request(method=request.method, target=request.url.raw_path, headers=headers)


async def _read_response(
    connection: h11.Connection, reader: asyncio.StreamReader, on_first_byte: Callable[[], None]
) -> tuple[h11.Response, bytes]:
    response: h11.Response | None = None
    chunks: list[bytes] = []
    size = 0
    first = True
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as exc:
            raise ProbeProtocolError(f"not an HTTP/1.1 answer ({exc})") from None
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data and response is None:
                if first:
                    raise ProbeProtocolError("the server closed the connection without answering")
                head = connection.trailing_data[0][:40].decode("ascii", "replace").strip()
                raise ProbeProtocolError(f"not an HTTP/1.1 answer (got {head!r})")
            if first and data:
                first = False
                on_first_byte()
            connection.receive_data(data)  # b"" tells h11 the peer closed
            continue
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
            size += len(event.data)
            if size >= BODY_LIMIT and response is not None:
                return response, b"".join(chunks)[:BODY_LIMIT]
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            if response is None:
                raise ProbeProtocolError("the server closed the connection without answering")
            return response, b"".join(chunks)
