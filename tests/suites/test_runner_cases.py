"""Real pytest subprocesses over the fixture suites: every reason code fires when it should and only then."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sandbox.servers import serve_in_thread
from sandbox.staging import broken_staging, healthy_staging
from suites.history import TestHistory, TierHistory
from tests.suites.conftest import make_engine, make_tier

# (paths, tier settings, environment, expected verdict, expected reason codes): each check both ways.
CASES: list[tuple[str, list[str], dict[str, Any], dict[str, str], str, set[str]]] = [
    ("collection errors", ["cases/test_collect_broken.py", "cases/test_awaited.py"], {}, {}, "failed",
     {"collection_errors"}),
    ("no collection errors", ["cases/test_awaited.py"], {}, {}, "passed", set()),
    ("nothing collected", ["empty"], {}, {}, "untrusted", {"no_tests_collected"}),
    ("all deselected", ["cases/test_awaited.py", "-k", "nothing_matches_this"], {}, {}, "untrusted",
     {"no_tests_collected"}),
    ("all skipped, a module skipped at import", ["cases/test_all_skipped.py", "cases/test_module_skip.py"], {}, {},
     "untrusted", {"skipped"}),
    ("some skipped, above the limit", ["cases/test_all_skipped.py", "cases/test_awaited.py"],
     {"max_skipped_ratio": 0.2}, {}, "untrusted", {"skipped"}),
    ("some skipped, within the limit", ["cases/test_all_skipped.py", "cases/test_awaited.py"],
     {"max_skipped_ratio": 0.8}, {}, "passed", set()),
    ("unawaited coroutine", ["cases/test_unawaited.py"], {}, {}, "untrusted", {"unawaited_coroutine"}),
    ("unraisable exception", ["cases/test_unraisable.py"], {}, {}, "untrusted", {"unraisable_exception"}),
    ("async test in a unittest.TestCase", ["cases/test_unmarked_async.py"], {}, {}, "untrusted",
     {"unmarked_async", "unawaited_coroutine"}),
    ("too fast for min_test_s", ["cases/test_timing.py"], {"min_test_s": 0.03}, {}, "untrusted", {"too_fast"}),
    ("slow enough for min_test_s", ["cases/test_timing.py::test_does_work"], {"min_test_s": 0.03}, {}, "passed",
     set()),
    ("mock backend and a fallback warning", ["cases/test_mock.py"], {}, {}, "untrusted", {"mock_fallback"}),
    ("real backend, unrelated warning", ["cases/test_real_backend.py"], {}, {}, "passed", set()),
    ("-p no:warnings", ["nowarnings"], {}, {}, "untrusted", {"warnings_disabled"}),
    ("PYTHONWARNINGS=ignore", ["cases/test_awaited.py"], {}, {"PYTHONWARNINGS": "ignore"}, "untrusted",
     {"warnings_disabled"}),
    ("one category ignored", ["cases/test_warns.py"], {"args": ("-W", "ignore::DeprecationWarning")}, {}, "passed",
     set()),
    ("pytest killed mid-run", ["cases/test_dies.py"], {}, {}, "incomplete", {"crashed"}),
    ("usage error: no such path", ["cases/test_no_such_file.py"], {}, {}, "incomplete",
     {"crashed", "no_tests_collected"}),
    ("exit 6: more warnings than allowed", ["cases/test_warns.py"], {"args": ("--max-warnings", "0")}, {}, "failed",
     set()),
    ("failures and errors", ["cases/test_mixed.py"], {"max_skipped_ratio": 0.2}, {}, "failed", set()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("paths", "settings", "env", "state", "codes"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_verdict_over_a_real_run(
    suites_dir: Path, paths: list[str], settings: dict[str, Any], env: dict[str, str], state: str, codes: set[str]
) -> None:
    tier = make_tier(suites_dir, paths, env=env, **settings)
    report = await make_engine().run(tier)
    assert {r.code for r in report.verdict.reasons} == codes, report.verdict.reasons
    assert report.verdict.state.value == state
    for reason in report.verdict.reasons:
        assert reason.detail


async def test_honest_suite_against_a_real_server_passes_with_no_reason(suites_dir: Path) -> None:
    with serve_in_thread(healthy_staging().app()) as server:
        tier = make_tier(suites_dir, ["cases/test_honest.py"], env={"SERVICE_URL": server.base_url})
        report = await make_engine().run(tier)
    assert report.verdict.state.value == "passed", report.verdict
    assert report.verdict.reasons == ()
    assert report.exit_code == 0
    assert (report.counts.collected, report.counts.passed) == (2, 2)


# pytest's summary words -> our count names (an xpass counts as passed in the JSON contract).
_SUMMARY_WORDS = {"passed": "passed", "xpassed": "passed", "failed": "failed", "error": "errors", "errors": "errors",
                  "skipped": "skipped", "xfailed": "xfailed", "deselected": "deselected"}  # fmt: skip


@pytest.mark.parametrize(
    "paths",
    [
        ["cases/test_mixed.py"],
        ["cases/test_collect_broken.py", "cases/test_mixed.py"],
        ["cases/test_all_skipped.py", "cases/test_module_skip.py", "cases/test_awaited.py"],
        ["cases/test_mixed.py", "-k", "param or fails"],
    ],
)
async def test_counts_equal_pytests_own_summary(suites_dir: Path, paths: list[str]) -> None:
    report = await make_engine().run(make_tier(suites_dir, paths, max_skipped_ratio=1.0))
    summary = [line for line in report.output_tail.splitlines() if re.match(r"^=+ .* in [\d.]+s", line)][-1]
    theirs = dict.fromkeys(_SUMMARY_WORDS.values(), 0)
    for number, word in re.findall(r"(\d+) (\w+)", summary):
        if word in _SUMMARY_WORDS:
            theirs[_SUMMARY_WORDS[word]] += int(number)
    collected = re.search(r"collected (\d+) item", report.output_tail)
    c = report.counts
    ours = {"passed": c.passed, "failed": c.failed, "errors": c.errors, "skipped": c.skipped, "xfailed": c.xfailed,
            "deselected": c.deselected}  # fmt: skip
    assert ours == theirs, summary
    assert collected is not None and c.collected == int(collected.group(1))


@pytest.mark.parametrize(("staging", "codes"), [(broken_staging, {"dependency_down"}), (healthy_staging, set())])
async def test_dependency_down_around_a_passing_run(
    suites_dir: Path, staging: Any, codes: set[str], tmp_path: Path
) -> None:
    from bot.config import load_config
    from sandbox.staging import sandbox_config_text
    from suites.engine import status_probe

    with serve_in_thread(staging().app()) as server:
        config_path = tmp_path / "stagebot.toml"
        config_path.write_text(sandbox_config_text(server.base_url, server.ws_url), encoding="utf-8")
        config = load_config(config_path, {})
        tier = make_tier(suites_dir, ["cases/test_awaited.py"], depends_on=("api", "frontend"))
        report = await make_engine(probe=status_probe(config)).run(tier)
    assert {r.code for r in report.verdict.reasons} == codes
    assert report.verdict.state.value == ("untrusted" if codes else "passed")
    assert {(d.service, d.when) for d in report.dependencies} == {
        (s, w) for s in ("api", "frontend") for w in ("before", "after")
    }
    if codes:
        assert "api down before the run" in report.verdict.reasons[0].detail
        assert "frontend" not in report.verdict.reasons[0].detail


@pytest.mark.parametrize(("collected", "fires"), [((20, 19, 21), True), ((2, 2, 3), False), ((20, 20), False)])
async def test_fewer_tests_than_the_recent_median(suites_dir: Path, collected: tuple[int, ...], fires: bool) -> None:
    history = TierHistory(collected_counts=collected)
    report = await make_engine().run(make_tier(suites_dir, ["cases/test_awaited.py"]), history=history)
    assert report.verdict.has("fewer_tests") is fires
    assert report.verdict.state.value == ("untrusted" if fires else "passed")


@pytest.mark.parametrize(("usual_s", "fires"), [(0.8, True), (0.001, False)])
async def test_too_fast_against_the_tests_own_median(suites_dir: Path, usual_s: float, fires: bool) -> None:
    nodeid = "test_timing.py::test_instant"  # node ids are relative to the suite's rootdir (its pytest.ini)
    history = TierHistory(tests={nodeid: TestHistory(("passed",) * 3, (usual_s, usual_s * 1.1, usual_s * 0.9))})
    report = await make_engine().run(make_tier(suites_dir, [f"cases/{nodeid}"]), history=history)
    assert report.verdict.has("too_fast") is fires
    if fires:
        assert report.verdict.reasons[0].tests == (nodeid,)


async def test_a_known_flaky_failure_says_so(suites_dir: Path) -> None:
    nodeid = "test_mixed.py::test_fails"
    history = TierHistory(tests={nodeid: TestHistory(("passed", "failed", "passed", "failed", "passed"))})
    report = await make_engine().run(make_tier(suites_dir, ["cases/test_mixed.py"]), history=history)
    flaky = {f.nodeid: f.flaky for f in report.failures}
    assert flaky[nodeid] is not None and flaky[nodeid].flip_rate == 1.0
    assert flaky["test_mixed.py::test_setup_error"] is None
