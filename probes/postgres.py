"""PostgreSQL probe: connect, then `SELECT 1`, each phase timed."""

from __future__ import annotations

import asyncio
import math
import time

import psycopg

from probes.failures import describe_failure
from probes.types import ProbeOutcome, ProbeTarget


async def probe_postgres(target: ProbeTarget) -> ProbeOutcome:
    """Connect and run `SELECT 1`; never raise."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    try:
        async with asyncio.timeout(target.timeout_s):
            # libpq's own connect_timeout is whole seconds (min 2); asyncio.timeout enforces the real budget.
            connection = await psycopg.AsyncConnection.connect(
                target.url, connect_timeout=max(2, math.ceil(target.timeout_s)), autocommit=True
            )
            timings["connect_ms"] = (time.perf_counter() - started) * 1000
            try:
                query_started = time.perf_counter()
                cursor = await connection.execute("SELECT 1")
                row = await cursor.fetchone()
                timings["query_ms"] = (time.perf_counter() - query_started) * 1000
            finally:
                await connection.close()
    except Exception as exc:
        timings["total_ms"] = (time.perf_counter() - started) * 1000
        return ProbeOutcome(ok=False, error=_describe(exc, target.timeout_s), timings=timings)
    total = (time.perf_counter() - started) * 1000
    timings["total_ms"] = total
    if row != (1,):
        return ProbeOutcome(ok=False, latency_ms=total, error=f"SELECT 1 returned {row!r}", timings=timings)
    return ProbeOutcome(ok=True, latency_ms=total, timings=timings)


def _describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, psycopg.OperationalError):
        # libpq says 'connection failed: connection to server at "h", port p failed: <cause>\n\t<hint>':
        # the cause after the last "failed:" of the first line is what on-call needs.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        cause = first_line.rsplit("failed:", 1)[-1].strip()
        cause = " ".join(cause.replace("FATAL:", "").split()) or first_line
        return cause[0].lower() + cause[1:]  # the same wording as the other probes: "connection refused"
    return describe_failure(exc, timeout_s)
