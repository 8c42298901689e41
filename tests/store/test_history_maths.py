"""The pure history maths, table-driven: uptime, percentiles, state changes, pass rates, durations, liveness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.store.history import (
    ProbeSample,
    StateChange,
    TierRunSample,
    last_state_change,
    parse_duration,
    percentile,
    summarize_service,
    summarize_tier,
    uptime,
)
from bot.store.records import abandoned_reason, parse_owner

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def samples(*states: str, latency: float | None = 10.0) -> list[ProbeSample]:
    return [ProbeSample(i + 1, T0 + timedelta(minutes=i), state, latency) for i, state in enumerate(states)]


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.5, 7.0),
        ([7.0], 0.95, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),  # nearest rank: ceil(0.5 * 4) = 2nd
        ([4.0, 3.0, 2.0, 1.0], 0.5, 2.0),  # order of input does not matter
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([float(i) for i in range(1, 101)], 0.50, 50.0),
        ([1.0, 100.0], 0.95, 100.0),
        ([5.0, 1.0, 3.0], 0.0, 1.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], fraction: float, expected: float | None) -> None:
    assert percentile(values, fraction) == expected


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], None),
        (["up", "up", "up"], 1.0),
        (["down", "down"], 0.0),
        (["up", "down", "up", "down"], 0.5),
        (["degraded", "down", "up", "up"], 0.75),  # degraded still answered correctly
    ],
)
def test_uptime_counts_answers_that_were_correct(states: list[str], expected: float | None) -> None:
    assert uptime(states) == expected


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], None),
        (["up"], None),
        (["up", "up", "up"], None),
        (["up", "down"], ("up", "down", 2)),
        (["up", "down", "down", "down"], ("up", "down", 2)),
        (["down", "up", "down", "up"], ("down", "up", 4)),  # the newest change wins
        (["up", "degraded", "degraded"], ("up", "degraded", 2)),
    ],
)
def test_last_state_change_is_the_newest_flip(states: list[str], expected: tuple[str, str, int] | None) -> None:
    change = last_state_change(samples(*states))
    if expected is None:
        assert change is None
    else:
        from_state, to_state, run_id = expected
        assert change == StateChange(T0 + timedelta(minutes=run_id - 1), from_state, to_state, run_id)


def test_service_summary_ignores_the_latency_of_failed_probes() -> None:
    history = summarize_service(
        "api",
        [
            ProbeSample(1, T0, "up", 10.0),
            ProbeSample(2, T0 + timedelta(minutes=1), "down", 5000.0),  # a timeout: not the service's speed
            ProbeSample(3, T0 + timedelta(minutes=2), "degraded", 30.0),
            ProbeSample(4, T0 + timedelta(minutes=3), "up", None),
            ProbeSample(5, T0 + timedelta(minutes=4), "up", 20.0),
        ],
    )
    assert history.samples == 5
    assert history.counts == {"up": 3, "degraded": 1, "down": 1}
    assert history.uptime == 0.8
    assert (history.latency_p50_ms, history.latency_p95_ms) == (20.0, 30.0)
    assert history.state == "up"
    assert history.last_change == StateChange(T0 + timedelta(minutes=3), "degraded", "up", 4)


def test_service_summary_of_nothing_says_nothing() -> None:
    history = summarize_service("api", [])
    assert (history.uptime, history.latency_p50_ms, history.state, history.last_change) == (None, None, None, None)


@pytest.mark.parametrize(
    ("verdicts", "pass_rate", "last"),
    [
        ([], None, None),
        (["passed"], 1.0, "passed"),
        (["passed", "failed", "untrusted", "passed"], 0.5, "passed"),
        (["passed", "passed", "incomplete"], 2 / 3, "incomplete"),
        (["untrusted"], 0.0, "untrusted"),  # green but untrusted is not a pass
    ],
)
def test_tier_pass_rate_and_last_verdict(verdicts: list[str], pass_rate: float | None, last: str | None) -> None:
    runs = [TierRunSample(i, T0 + timedelta(hours=i), v) for i, v in enumerate(verdicts)]
    summary = summarize_tier("p1", runs)
    assert (summary.runs, summary.pass_rate, summary.last_verdict) == (len(verdicts), pass_rate, last)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1h", "3x", "yesterday", "1d2h"])
def test_parse_duration_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="expected a positive duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("owner", "expected"),
    [("vm:123", ("vm", 123)), ("host.example.com:7", ("host.example.com", 7)), ("garbage", ("garbage", None))],
)
def test_parse_owner(owner: str, expected: tuple[str, int | None]) -> None:
    assert parse_owner(owner) == expected


@pytest.mark.parametrize(
    ("owner", "beat_ago", "alive", "abandoned"),
    [
        ("here:10", timedelta(seconds=1), False, "process here:10 is gone"),  # same host, pid dead: certain
        ("here:10", timedelta(seconds=1), True, None),  # same host, alive, beating
        ("here:10", timedelta(hours=1), True, "no heartbeat"),  # alive pid but silent: a reused pid, or hung
        ("there:10", timedelta(seconds=1), False, None),  # another host: its pid means nothing here
        ("there:10", timedelta(minutes=11), False, "no heartbeat"),
        ("there:10", None, False, "no heartbeat"),
    ],
)
def test_abandoned_reason(owner: str, beat_ago: timedelta | None, alive: bool, abandoned: str | None) -> None:
    now = T0 + timedelta(days=1)
    reason = abandoned_reason(
        owner,
        None if beat_ago is None else now - beat_ago,
        now=now,
        this_host="here",
        is_pid_alive=lambda pid: alive,
        stale_after=timedelta(minutes=10),
    )
    if abandoned is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(abandoned)
