"""Run a tier end to end: probe its dependencies, run pytest, probe again, judge, report.

The IO collaborators (the runner, the dependency probe) come in through the constructor; history comes in as a
value, so a caller with a store, one without, and the tests all drive the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from bot.config import Config, TierConfig
from bot.status import check_status
from suites.events import EventCallback
from suites.flakiness import find_flaky
from suites.history import NO_HISTORY, TierHistory
from suites.report import TierReport, build_report
from suites.runner import TierRunner
from suites.verdict import DependencyCheck, judge

# Probe the named services; return (service, state, error) for each.
DependencyProbe = Callable[[frozenset[str]], Awaitable[Sequence[tuple[str, str, str]]]]


def status_probe(config: Config) -> DependencyProbe:
    """Return a dependency probe that asks the configured services, as `stagebot status` does."""

    async def probe(names: frozenset[str]) -> Sequence[tuple[str, str, str]]:
        report = await check_status(config, only=set(names))
        return [(s.name, s.state.value, s.error or "") for s in report.services]

    return probe


class TierEngine:
    """Run tiers with their dependency checks and judge them."""

    def __init__(self, runner: TierRunner, probe: DependencyProbe) -> None:
        self._runner = runner
        self._probe = probe

    async def run(
        self,
        tier: TierConfig,
        *,
        history: TierHistory = NO_HISTORY,
        run_id: int | None = None,
        on_event: EventCallback | None = None,
        stop: asyncio.Event | None = None,
    ) -> TierReport:
        """Run one tier and return its report; a tier that cannot start raises UsageError before anything runs."""
        before = await self._check_dependencies(tier, "before")
        run = await self._runner.run(tier, on_event=on_event, stop=stop)
        after = await self._check_dependencies(tier, "after")
        dependencies = (*before, *after)
        verdict = judge(
            run.events,
            exit_code=run.exit_code,
            tier=tier,
            history=history,
            dependencies=dependencies,
            timed_out=run.timed_out,
            cancelled=run.cancelled,
            output_tail=run.output_tail,
        )
        return build_report(
            tier=tier.name,
            run_id=run_id,
            events=run.events,
            verdict=verdict,
            duration_s=run.duration_s,
            exit_code=run.exit_code,
            flaky=find_flaky(history),
            dependencies=dependencies,
            impact=tier.impact,
            output_tail=run.output_tail,
        )

    async def _check_dependencies(self, tier: TierConfig, when: str) -> tuple[DependencyCheck, ...]:
        if not tier.depends_on:
            return ()
        found = await self._probe(frozenset(tier.depends_on))
        return tuple(DependencyCheck(name, when, state, error) for name, state, error in found)
