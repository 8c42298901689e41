"""TCP probe: can a connection be opened, and how long does it take."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from probes.failures import describe_failure
from probes.types import ProbeOutcome, ProbeTarget


async def probe_tcp(target: ProbeTarget) -> ProbeOutcome:
    """Open and close one TCP connection; never raise."""
    parts = urlsplit(target.url)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout_s):
            _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        connect_ms = (time.perf_counter() - started) * 1000
        writer.close()
        try:
            async with asyncio.timeout(1):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass  # the connection was made; how it closes does not change the verdict
    except Exception as exc:
        total = (time.perf_counter() - started) * 1000
        return ProbeOutcome(ok=False, error=describe_failure(exc, target.timeout_s), timings={"total_ms": total})
    return ProbeOutcome(ok=True, latency_ms=connect_ms, timings={"connect_ms": connect_ms, "total_ms": connect_ms})
