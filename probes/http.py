"""HTTP probe: status, body regex, and latency split into connect / TLS / time-to-first-byte / total."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from probes.failures import describe_failure
from probes.types import ProbeOutcome, ProbeTarget

# Enough of the body to find a health marker; a health endpoint that streams megabytes is not read to the end.
_BODY_LIMIT = 64 * 1024


def build_http_client() -> httpx.AsyncClient:
    """Return a client shared by a round's HTTP probes.

    No keep-alive and no pool limit: every probe opens its own connection, so its latency includes connect and TLS
    (what a user pays) and never a wait for a pooled connection (which would measure our own queueing).
    """
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        follow_redirects=False,
        headers={"user-agent": "stagebot-probe/0.1"},
    )


class _PhaseClock:
    """Collect httpcore trace events into phase durations (the `trace` request extension)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}

    async def __call__(self, event_name: str, info: dict[str, Any]) -> None:
        self.marks.setdefault(event_name, time.perf_counter())

    def phase_ms(self, begin: str, end: str) -> float | None:
        if begin in self.marks and end in self.marks:
            return (self.marks[end] - self.marks[begin]) * 1000
        return None

    def timings(self, total_ms: float) -> dict[str, float]:
        found: dict[str, float] = {}
        connect = self.phase_ms("connection.connect_tcp.started", "connection.connect_tcp.complete")
        if connect is not None:
            found["connect_ms"] = connect
        tls = self.phase_ms("connection.start_tls.started", "connection.start_tls.complete")
        if tls is not None:
            found["tls_ms"] = tls
        headers_done = next(
            (self.marks[k] for k in ("http11.receive_response_headers.complete",
                                     "http2.receive_response_headers.complete") if k in self.marks),
            None,
        )  # fmt: skip
        if headers_done is not None:
            found["ttfb_ms"] = (headers_done - self.started) * 1000
        found["total_ms"] = total_ms
        return found


async def probe_http(target: ProbeTarget, client: httpx.AsyncClient) -> ProbeOutcome:
    """Send one GET and judge its status and body; never raise."""
    clock = _PhaseClock()
    try:
        async with asyncio.timeout(target.timeout_s):
            request = client.build_request(
                "GET", target.url, headers=dict(target.headers), extensions={"trace": clock},
                timeout=httpx.Timeout(target.timeout_s),
            )  # fmt: skip
            response = await client.send(request, stream=True)
            try:
                body = await _read_limited(response) if target.expect_body else b""
            finally:
                await response.aclose()
    except Exception as exc:
        total = (time.perf_counter() - clock.started) * 1000
        return ProbeOutcome(ok=False, error=describe_failure(exc, target.timeout_s), timings=clock.timings(total))
    total_ms = (time.perf_counter() - clock.started) * 1000
    timings = clock.timings(total_ms)
    code = response.status_code
    expected = code in target.expect_status if target.expect_status else 200 <= code < 300
    if not expected:
        wanted = ", ".join(map(str, target.expect_status)) if target.expect_status else "2xx"
        return ProbeOutcome(
            ok=False,
            latency_ms=total_ms,
            status_code=code,
            error=f"HTTP {code}, expected {wanted}",
            timings=timings,
        )
    if target.expect_body and not re.search(target.expect_body, body.decode("utf-8", "replace")):
        return ProbeOutcome(
            ok=False, latency_ms=total_ms, status_code=code,
            error=f"body does not match {target.expect_body!r}", timings=timings,
        )  # fmt: skip
    return ProbeOutcome(ok=True, latency_ms=total_ms, status_code=code, timings=timings)


async def _read_limited(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _BODY_LIMIT:
            break
    return b"".join(chunks)[:_BODY_LIMIT]
