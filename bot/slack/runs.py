"""Background work started from Slack: tracked, bounded, one run per tier, drained on shutdown.

Bolt keeps no handle on lazy listeners (shared/reference/slack.md), so the bot starts its own tasks here: a
semaphore bounds how many run at once (the rest wait `queued`), a tier already running is pointed at instead of
started twice, and `drain` lets running work finish before the process exits, cancelling what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class TrackedRun:
    run_id: int
    tier: str | None
    channel: str
    task: asyncio.Task[None] | None = None
    message_id: int | None = None  # the outbox id of the run's channel message, once posted
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)


class RunTracker:
    """The set of runs this process is working on."""

    def __init__(self, max_concurrent: int) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._runs: dict[int, TrackedRun] = {}
        self._others: set[asyncio.Task[None]] = set()
        self._accepting = True

    @property
    def accepting(self) -> bool:
        return self._accepting

    def get(self, run_id: int) -> TrackedRun | None:
        return self._runs.get(run_id)

    def running_tier(self, tier: str) -> TrackedRun | None:
        """Return the run of `tier` this process is working on, if any."""
        return next((run for run in self._runs.values() if run.tier == tier), None)

    def start(
        self,
        run: TrackedRun,
        work: Callable[[TrackedRun], Awaitable[None]],
        on_start: Callable[[int], Awaitable[bool]] | None = None,
    ) -> bool:
        """Start `work` in the background once a slot is free; False when this run is already tracked."""
        if run.run_id in self._runs or not self._accepting:
            return False
        self._runs[run.run_id] = run

        context = {"run_id": run.run_id, "tier": run.tier, "channel": run.channel}

        async def guarded() -> None:
            try:
                async with self._slots:
                    if on_start is not None and not await on_start(run.run_id):
                        log.info("run %s no longer queued; not started", run.run_id, extra=context)
                        return  # cancelled or taken for dead while it waited for a slot
                    log.info("run %s started", run.run_id, extra=context)
                    await work(run)
                    log.info("run %s done", run.run_id, extra=context)
            except asyncio.CancelledError:
                log.warning("run %s stopped by shutdown", run.run_id, extra=context)
                raise
            except Exception:
                log.exception("run %s failed", run.run_id, extra=context)
            finally:
                self._runs.pop(run.run_id, None)

        run.task = asyncio.create_task(guarded(), name=f"run:{run.run_id}")
        return True

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run short background work that is not a run (a click's decision), drained like runs on shutdown."""
        task = asyncio.create_task(_logged(work, name), name=name)
        self._others.add(task)
        task.add_done_callback(self._others.discard)

    async def drain(self, timeout_s: float) -> list[int]:
        """Stop accepting work, wait up to `timeout_s` for running work, cancel the rest; return the cancelled ids."""
        self._accepting = False
        tasks = {run.run_id: run.task for run in self._runs.values() if run.task is not None}
        if not tasks and not self._others:
            return []
        _done, pending = await asyncio.wait([*tasks.values(), *self._others], timeout=timeout_s)
        cancelled = [run_id for run_id, task in tasks.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return cancelled


async def _logged(work: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background work %s failed", name)
