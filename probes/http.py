"""HTTP probe: status, body regex, and latency split into connect / TLS / time-to-first-byte / total."""

from __future__ import annotations

import asyncio
import re
import time

import httpx

from probes.failures import describe_failure
from probes.transport import TimedTransport
from probes.types import ProbeOutcome, ProbeTarget


def build_http_client() -> httpx.AsyncClient:
    """Return a client shared by a round's HTTP probes: no pool, every probe timed on its own connection."""
    return httpx.AsyncClient(
        transport=TimedTransport(),
        follow_redirects=False,
        headers={"user-agent": "stagebot-probe/0.1"},
    )


async def probe_http(target: ProbeTarget, client: httpx.AsyncClient) -> ProbeOutcome:
    """Send one GET and judge its status and body; never raise."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout_s):
            response = await client.get(target.url, headers=dict(target.headers))
    except Exception as exc:
        total = (time.perf_counter() - started) * 1000
        return ProbeOutcome(ok=False, error=describe_failure(exc, target.timeout_s), timings={"total_ms": total})
    timings: dict[str, float] = dict(response.extensions.get("timings") or {})
    latency = timings.get("total_ms", (time.perf_counter() - started) * 1000)
    code = response.status_code
    expected = code in target.expect_status if target.expect_status else 200 <= code < 300
    if not expected:
        wanted = ", ".join(map(str, target.expect_status)) if target.expect_status else "2xx"
        return ProbeOutcome(
            ok=False, latency_ms=latency, status_code=code, error=f"HTTP {code}, expected {wanted}", timings=timings
        )
    if target.expect_body and not re.search(target.expect_body, response.text):
        return ProbeOutcome(
            ok=False, latency_ms=latency, status_code=code,
            error=f"body does not match {target.expect_body!r}", timings=timings,
        )  # fmt: skip
    return ProbeOutcome(ok=True, latency_ms=latency, status_code=code, timings=timings)
