"""Run every probe of a round concurrently, with retries, under one deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import httpx

from probes.http import build_http_client, probe_http
from probes.tcp import probe_tcp
from probes.types import ProbeOutcome, ProbeTarget
from probes.websocket import probe_websocket

ProbeFunction = Callable[[ProbeTarget], Awaitable[ProbeOutcome]]


# psycopg and redis-py cost ~0.15 s to import: only a config with such a service pays for them.
async def probe_postgres(target: ProbeTarget) -> ProbeOutcome:
    from probes.postgres import probe_postgres as probe

    return await probe(target)


async def probe_redis(target: ProbeTarget) -> ProbeOutcome:
    from probes.redis import probe_redis as probe

    return await probe(target)


class Prober:
    """Probe targets by kind; the HTTP client is handed in so one round shares it."""

    def __init__(self, http_client: httpx.AsyncClient, retry_delay_s: float = 0.0) -> None:
        self.retry_delay_s = retry_delay_s
        self._by_kind: dict[str, ProbeFunction] = {
            "http": lambda target: probe_http(target, http_client),
            "websocket": probe_websocket,
            "tcp": probe_tcp,
            "postgres": probe_postgres,
            "redis": probe_redis,
        }

    async def probe(self, target: ProbeTarget) -> ProbeOutcome:
        """Probe once, and again up to `target.retries` times while it fails, so one lost packet pages nobody."""
        probe_once = self._by_kind[target.kind]
        outcome = await probe_once(target)
        attempts = 1
        while not outcome.ok and attempts <= target.retries:
            if self.retry_delay_s:
                await asyncio.sleep(self.retry_delay_s)
            outcome = await probe_once(target)
            attempts += 1
        return replace(outcome, attempts=attempts)

    async def probe_all(self, targets: Sequence[ProbeTarget], deadline_s: float) -> list[ProbeOutcome]:
        """Probe every target at once; one still running at the deadline is down, never awaited forever."""
        tasks = [asyncio.create_task(self.probe(t), name=f"probe:{t.name}") for t in targets]
        if not tasks:
            return []
        _done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return [_late(deadline_s) if task in pending else _result_or_failure(task) for task in tasks]


def _late(deadline_s: float) -> ProbeOutcome:
    return ProbeOutcome(ok=False, error=f"still no answer at the round's deadline of {deadline_s:g}s")


def _result_or_failure(task: asyncio.Task[ProbeOutcome]) -> ProbeOutcome:
    # Probes catch their own errors; this guards the round against a bug in one probe taking down the table.
    exc = task.exception()
    if exc is not None:
        return ProbeOutcome(ok=False, error=f"probe crashed: {type(exc).__name__}: {exc}")
    return task.result()


async def probe_targets(
    targets: Sequence[ProbeTarget], deadline_s: float, retry_delay_s: float = 0.0
) -> list[ProbeOutcome]:
    """Probe every target concurrently with a fresh shared HTTP client."""
    async with build_http_client() as client:
        return await Prober(client, retry_delay_s).probe_all(targets, deadline_s)
