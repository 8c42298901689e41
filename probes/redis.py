"""Redis probe: connect and `PING`, timing the connect and the round trip."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from probes.failures import describe_failure
from probes.types import ProbeOutcome, ProbeTarget


async def probe_redis(target: ProbeTarget) -> ProbeOutcome:
    """Connect and PING; never raise."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    client: Redis = Redis.from_url(
        target.url, socket_connect_timeout=target.timeout_s, socket_timeout=target.timeout_s,
        retry_on_timeout=False, single_connection_client=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(target.timeout_s):
            # The first PING opens the connection; the second measures the round trip on its own.
            await client.ping()
            timings["connect_ms"] = (time.perf_counter() - started) * 1000
            ping_started = time.perf_counter()
            answer = await client.ping()
            timings["ping_ms"] = (time.perf_counter() - ping_started) * 1000
    except Exception as exc:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return ProbeOutcome(ok=False, error=_describe(exc, target.timeout_s), timings=timings)
    finally:
        await client.aclose()
    total = timings["connect_ms"]
    timings["total_ms"] = (time.perf_counter() - started) * 1000
    if answer is not True:
        return ProbeOutcome(ok=False, latency_ms=total, error=f"PING answered {answer!r}", timings=timings)
    return ProbeOutcome(ok=True, latency_ms=total, timings=timings)


def _describe(exc: BaseException, timeout_s: float) -> str:
    text = describe_failure(exc, timeout_s)
    # redis-py wraps socket errors in ConnectionError("Error 111 connecting to host:port. Connection refused.").
    if "Connection refused" in str(exc):
        return "connection refused"
    return text
