"""WebSocket probe: the handshake (a rejected upgrade reports its HTTP status), then an optional send/expect.

The reply wait has its own deadline: a server that accepts the handshake and then says nothing is down, not a hang.
"""

from __future__ import annotations

import asyncio
import re
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from probes.failures import describe_failure
from probes.types import ProbeOutcome, ProbeTarget


async def probe_websocket(target: ProbeTarget) -> ProbeOutcome:
    """Open the socket, optionally exchange one message, close; never raise."""
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        async with asyncio.timeout(target.timeout_s):
            async with connect(target.url, open_timeout=None, close_timeout=1, max_size=2**20) as socket:
                timings["handshake_ms"] = elapsed()
                if target.send is not None or target.expect is not None:
                    await _exchange(socket, target)
                    timings["reply_ms"] = elapsed() - timings["handshake_ms"]
                total = elapsed()
    except InvalidStatus as exc:
        code = exc.response.status_code
        timings["total_ms"] = elapsed()
        return ProbeOutcome(
            ok=False, latency_ms=elapsed(), status_code=code,
            error=f"upgrade rejected with HTTP {code}", timings=timings,
        )  # fmt: skip
    except ConnectionClosed as exc:
        timings["total_ms"] = elapsed()
        return ProbeOutcome(ok=False, status_code=101, error=f"closed by the server ({exc})", timings=timings)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and "handshake_ms" in timings and target.expect:
            error = f"no reply matching {target.expect!r} within {target.timeout_s:g}s"
        elif isinstance(exc, TimeoutError) and "handshake_ms" in timings:
            error = f"no reply within {target.timeout_s:g}s"
        else:
            error = describe_failure(exc, target.timeout_s)
        timings["total_ms"] = elapsed()
        return ProbeOutcome(ok=False, error=error, timings=timings)
    timings["total_ms"] = total
    return ProbeOutcome(ok=True, latency_ms=total, status_code=101, timings=timings)


async def _exchange(socket: ClientConnection, target: ProbeTarget) -> None:
    """Send the configured message and read until a reply matches `expect` (the caller's deadline bounds it)."""
    if target.send is not None:
        await socket.send(target.send)
    if target.expect is None:
        return
    pattern = re.compile(target.expect)
    # Replies that do not match (a welcome banner, a heartbeat) are read past until the deadline.
    while True:
        message = await socket.recv()
        text = message if isinstance(message, str) else message.decode("utf-8", "replace")
        if pattern.search(text):
            return
