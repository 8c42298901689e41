"""The Store on SQLite and PostgreSQL alike: runs, results, tier history, the history query, decisions, retention."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from bot.config import StoreSettings
from bot.errors import UsageError
from bot.store import FindingRecord, SchemaTooNewError, Store, head_revision, open_store, open_store_with_schema
from bot.store.engines import create_store_engine
from probes.types import ServiceState, ServiceStatus
from suites.history import TestResultRecord as ResultRecord  # aliased: pytest would try to collect Test*

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def timed(store: Store, clock: Clock) -> Store:
    """The same database through a Store whose clock the test sets."""
    return Store(store.engine, clock=clock)


def service(name: str, state: str, latency_ms: float | None = 12.0) -> ServiceStatus:
    return ServiceStatus(
        name=name, kind="http", target=f"http://127.0.0.1/{name}", state=ServiceState(state), status_code=200,
        latency_ms=latency_ms, error=None if state == "up" else "HTTP 503", caused_by=None,
        timings={"total_ms": latency_ms or 0.0},
    )  # fmt: skip


def status_run(store: Store, clock: Clock, at: datetime, **states: str) -> int:
    clock.now = at
    run_id = store.create_run(kind="status", target=None, requested_by="alice", origin="cli")
    store.record_probe_results(run_id, [service(name, state) for name, state in states.items()])
    store.finish_run(run_id, state="finished", verdict="up", summary="")
    return run_id


def test_a_run_goes_from_running_to_finished_with_what_it_found(timed: Store, clock: Clock) -> None:
    run_id = timed.create_run(
        kind="status", target=None, requested_by="U123", origin="slack", channel="C1", message_ts="1700000000.0001"
    )
    run = timed.get_run(run_id)
    assert run is not None
    assert (run.state, run.started_at, run.finished_at, run.origin, run.channel) == (
        "running", T0, None, "slack", "C1"
    )  # fmt: skip
    clock.now = T0 + timedelta(seconds=3)
    timed.finish_run(run_id, state="finished", verdict="down", summary="1/2 up", details={"counts": {"up": 1}})
    run = timed.get_run(run_id)
    assert run is not None
    assert (run.state, run.verdict, run.summary, run.details) == ("finished", "down", "1/2 up", {"counts": {"up": 1}})
    assert run.finished_at == T0 + timedelta(seconds=3)
    assert run.finished_at.tzinfo is UTC
    assert timed.get_run(run_id + 1000) is None


def test_a_queued_run_starts_once_and_a_cancelled_one_stays_cancelled(store: Store) -> None:
    run_id = store.create_run(kind="tier", target="p1", requested_by="U1", origin="slack", state="queued")
    assert store.start_run(run_id) is True
    assert store.start_run(run_id) is False  # already running
    store.finish_run(run_id, state="cancelled", summary="cancelled by U2")
    store.finish_run(run_id, state="finished", verdict="passed")
    run = store.get_run(run_id)
    assert run is not None and (run.state, run.summary) == ("cancelled", "cancelled by U2")


def test_a_retried_slack_request_does_not_start_a_second_run(store: Store) -> None:
    first = store.create_run(kind="tier", target="p1", requested_by="U1", origin="slack", request_key="T1:trigger-9")
    again = store.create_run(kind="tier", target="p1", requested_by="U1", origin="slack", request_key="T1:trigger-9")
    assert again == first
    assert len(store.recent_runs()) == 1


def test_bad_values_are_refused_before_they_reach_the_database(store: Store) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        store.create_run(kind="reboot", target=None, requested_by="x", origin="cli")
    run_id = store.create_run(kind="status", target=None, requested_by="x", origin="cli")
    with pytest.raises(ValueError, match="state must be one of"):
        store.finish_run(run_id, state="running")
    with pytest.raises(KeyError):
        store.finish_run(run_id + 1, state="finished")


def test_recent_runs_newest_first_and_filtered(timed: Store, clock: Clock) -> None:
    ids = []
    for i, (kind, target) in enumerate([("status", None), ("tier", "p1"), ("tier", "p2"), ("tier", "p1")]):
        clock.now = T0 + timedelta(minutes=i)
        ids.append(timed.create_run(kind=kind, target=target, requested_by="x", origin="cli"))
    assert [r.id for r in timed.recent_runs()] == ids[::-1]
    assert [r.id for r in timed.recent_runs(kind="tier", target="p1")] == [ids[3], ids[1]]
    assert [r.id for r in timed.recent_runs(limit=2)] == [ids[3], ids[2]]
    assert [r.id for r in timed.recent_runs(since=T0 + timedelta(minutes=2))] == [ids[3], ids[2]]


def test_tier_history_is_newest_first_and_leaves_out_unfinished_runs(timed: Store, clock: Clock) -> None:
    def tier_run(minute: int, state: str, outcomes: dict[str, tuple[str, float]], collected: int | None) -> None:
        clock.now = T0 + timedelta(minutes=minute)
        run_id = timed.create_run(kind="tier", target="p1", requested_by="x", origin="cli")
        timed.record_test_results(
            run_id, [ResultRecord(nodeid, outcome, duration) for nodeid, (outcome, duration) in outcomes.items()]
        )
        details = {} if collected is None else {"counts": {"collected": collected}}
        timed.finish_run(run_id, state=state, verdict="passed", details=details)

    tier_run(0, "finished", {"t::a": ("passed", 1.0), "t::b": ("failed", 0.5)}, collected=3)
    tier_run(1, "interrupted", {"t::a": ("failed", 9.0)}, collected=None)
    tier_run(2, "finished", {"t::a": ("passed", 2.0), "t::b": ("passed", 0.7)}, collected=None)

    history = timed.tier_history("p1")
    assert history.collected_counts == (2, 3)  # counted rows when the engine stored no count
    assert history.tests["t::a"].outcomes == ("passed", "passed")
    assert history.tests["t::a"].passed_durations_s == (2.0, 1.0)
    assert history.tests["t::b"].outcomes == ("passed", "failed")
    assert history.tests["t::b"].passed_durations_s == (0.7,)
    assert timed.tier_history("p1", limit=1).collected_counts == (2,)
    assert timed.tier_history("p9").collected_counts == ()


def test_history_gives_uptime_latency_and_the_last_change(timed: Store, clock: Clock) -> None:
    status_run(timed, clock, T0 - timedelta(days=3), api="down", auth="up")  # outside the window
    status_run(timed, clock, T0, api="up", auth="up")
    flip = status_run(timed, clock, T0 + timedelta(hours=1), api="down", auth="up")
    status_run(timed, clock, T0 + timedelta(hours=2), api="down", auth="degraded")
    status_run(timed, clock, T0 + timedelta(hours=3), api="down", auth="up")
    clock.now = T0 + timedelta(hours=4)
    tier = timed.create_run(kind="tier", target="p1", requested_by="x", origin="cli")
    timed.finish_run(tier, state="finished", verdict="untrusted")

    report = timed.history(since=T0 - timedelta(minutes=1), until=T0 + timedelta(hours=5), limit=3)
    by_name = {s.name: s for s in report.services}
    assert set(by_name) == {"api", "auth"}
    api = by_name["api"]
    assert (api.samples, api.uptime, api.state) == (4, 0.25, "down")
    assert api.last_change is not None
    assert (api.last_change.from_state, api.last_change.to_state, api.last_change.run_id) == ("up", "down", flip)
    assert api.last_change.at == T0 + timedelta(hours=1)
    assert by_name["auth"].uptime == 1.0
    assert by_name["auth"].latency_p50_ms == 12.0
    assert [(t.name, t.runs, t.pass_rate, t.last_verdict) for t in report.tiers] == [("p1", 1, 0.0, "untrusted")]
    assert [r.kind for r in report.runs] == ["tier", "status", "status"]

    only_api = timed.history(since=T0 - timedelta(minutes=1), until=T0 + timedelta(hours=5), service="api")
    assert [s.name for s in only_api.services] == ["api"]


def test_a_run_left_by_a_dead_process_is_interrupted_and_a_live_ones_is_not(store_url: str) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    first = open_store(store_url, {}, StoreSettings())
    try:
        mine = first.create_run(kind="status", target=None, requested_by="x", origin="cli")
        orphan = Store(first.engine, owner=f"{first.host}:{dead_pid}")
        orphaned = orphan.create_run(kind="tier", target="p1", requested_by="x", origin="cli")
        replica = Store(first.engine, owner="other-host:1")
        remote = replica.create_run(kind="tier", target="p2", requested_by="x", origin="cli")
        now = datetime.now(UTC)

        assert first.mark_interrupted_runs(now) == [orphaned]
        run = first.get_run(orphaned)
        assert run is not None and run.state == "interrupted"
        assert f"process {first.host}:{dead_pid} is gone" in run.summary
        assert run.finished_at == now
        assert [e.action for e in first.audit_entries(subject=f"run:{orphaned}")] == ["run.interrupted"]

        # A run is alive while it beats, whoever owns it, and taken for dead once it has been silent too long.
        assert first.mark_interrupted_runs(now + timedelta(minutes=5)) == []
        Store(first.engine, clock=Clock(now + timedelta(minutes=8))).heartbeat(mine)
        assert first.mark_interrupted_runs(now + timedelta(minutes=11)) == [remote]
        own = first.get_run(mine)
        assert own is not None and own.state == "running"
    finally:
        first.close()


def test_diagnoses_keep_their_findings(store: Store) -> None:
    run_id = store.create_run(kind="diagnose", target="api", requested_by="x", origin="slack")
    findings = [
        FindingRecord("crash_loop", "container exited 3 times", "error", {"exit_code": 1}),
        FindingRecord("bad_env", "DATABASE_URL unset"),
    ]
    diagnosis_id = store.record_diagnosis(
        run_id, service="api", summary="crash loop", findings=findings, revision="api-00042", etag="W/1"
    )
    assert store.findings(diagnosis_id) == findings


def test_fifty_concurrent_clicks_approve_an_offer_exactly_once(store: Store) -> None:
    now = datetime.now(UTC)
    offer_id = store.create_offer(
        service="api", action="restart", requested_by="U0", expires_at=now + timedelta(minutes=30), etag="W/7"
    )
    # Two stores on two engines: two connection pools, as two bot processes would have (tests/store/test_processes.py
    # does it with two real processes).
    stores = [store, Store(create_store_engine(store.engine.url))]
    barrier = threading.Barrier(50)
    wins: list[str] = []

    def click(i: int) -> None:
        barrier.wait()
        if stores[i % 2].decide_offer(offer_id, decision="approved", decided_by=f"U{i}", now=now).won:
            wins.append(f"U{i}")

    threads = [threading.Thread(target=click, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stores[1].close()
    assert len(wins) == 1
    offer = store.get_offer(offer_id)
    assert offer is not None and (offer.state, offer.decided_by) == ("approved", wins[0])
    loser = store.decide_offer(offer_id, decision="denied", decided_by="U99", now=now)
    assert not loser.won and loser.offer.decided_by == wins[0]  # "already approved by ..."
    assert store.finish_offer(offer_id, outcome="succeeded", detail={"revision": "api-00043"}) is True
    assert store.finish_offer(offer_id, outcome="failed", detail={}) is False
    assert store.approved_actions_since("api", now - timedelta(hours=1)) == 1


def test_an_expired_offer_cannot_be_approved(store: Store) -> None:
    now = datetime.now(UTC)
    offer_id = store.create_offer(service="api", action="rollback", requested_by="U0", expires_at=now)
    late = store.decide_offer(offer_id, decision="approved", decided_by="U1", now=now + timedelta(seconds=1))
    assert not late.won and late.offer.state == "pending"
    assert store.pending_offers(now + timedelta(seconds=1)) == []
    assert store.expire_offers(now + timedelta(seconds=1)) == [offer_id]
    offer = store.get_offer(offer_id)
    assert offer is not None and offer.state == "expired"


def test_the_outbox_posts_each_message_once(store: Store) -> None:
    run_id = store.create_run(kind="status", target=None, requested_by="U1", origin="slack")
    message = {"channel": "C1", "text": "1/2 up"}
    first = store.enqueue_message(idempotency_key=f"run:{run_id}:summary", channel="C1", method="chat.postMessage",
                                  payload=message, run_id=run_id)  # fmt: skip
    again = store.enqueue_message(idempotency_key=f"run:{run_id}:summary", channel="C1", method="chat.postMessage",
                                  payload=message, run_id=run_id)  # fmt: skip
    assert again == first

    replica = Store(store.engine, owner="replica:2")
    now = datetime.now(UTC)
    claimed = store.claim_messages(now=now)
    assert [m.id for m in claimed] == [first] and claimed[0].payload == message
    assert replica.claim_messages(now=now) == []  # leased to the first process
    store.mark_failed(first, error="HTTP 429", retry_at=now + timedelta(seconds=30))
    assert replica.claim_messages(now=now + timedelta(seconds=10)) == []  # not due yet
    retried = replica.claim_messages(now=now + timedelta(seconds=31))
    assert [(m.id, m.attempts) for m in retried] == [(first, 2)]
    assert replica.mark_delivered(first, slack_ts="1700000000.000100") is True
    assert store.mark_delivered(first, slack_ts="1700000000.000200") is False
    assert store.claim_messages(now=now + timedelta(hours=1)) == []
    delivered = store.get_message(first)
    assert delivered is not None and delivered.slack_ts == "1700000000.000100"


def test_retention_deletes_old_runs_and_keeps_the_audit_log(timed: Store, clock: Clock) -> None:
    old = status_run(timed, clock, T0 - timedelta(days=100), api="down")
    timed.append_audit(actor="U1", action="remediation.approved", subject="service:api", detail={"offer": 1})
    recent = status_run(timed, clock, T0 - timedelta(days=1), api="up")
    clock.now = T0 - timedelta(days=200)
    active = timed.create_run(kind="tier", target="p1", requested_by="x", origin="cli")
    clock.now = T0

    counts = timed.cleanup(90, T0)
    assert (counts.runs, counts.probe_results) == (1, 1)
    assert timed.get_run(old) is None
    assert timed.get_run(recent) is not None
    assert timed.get_run(active) is not None  # never deleted while it may still be working
    assert [e.action for e in timed.audit_entries()] == ["remediation.approved"]
    assert timed.history(since=T0 - timedelta(days=365), until=T0).services[0].samples == 1
    assert timed.cleanup(90, T0).runs == 0


def test_the_audit_log_refuses_updates_and_deletes(store: Store) -> None:
    store.append_audit(actor="U1", action="click", subject="offer:1", detail={"allowed": False})
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.exec_driver_sql(statement)
    entries = store.audit_entries()
    assert [(e.actor, e.detail) for e in entries] == [("U1", {"allowed": False})]


def test_a_database_from_a_newer_stagebot_is_refused(store_url: str) -> None:
    store, change = open_store_with_schema(store_url, {}, StoreSettings())
    assert (change.before, change.after) == (None, head_revision())
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    store.close()
    with pytest.raises(SchemaTooNewError) as refused:
        open_store(store_url, {}, StoreSettings())
    message = str(refused.value)
    assert "9999_from_the_future" in message and "newer than this stagebot" in message
    assert "\n" not in message


def test_opening_twice_migrates_once(store_url: str) -> None:
    first, change = open_store_with_schema(store_url, {}, StoreSettings())
    first.close()
    second, again = open_store_with_schema(store_url, {}, StoreSettings())
    second.close()
    assert change.changed and not again.changed


@pytest.fixture
def closed_port() -> Iterator[int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    yield port


def test_an_unreachable_database_is_one_line_naming_it_without_the_password(closed_port: int) -> None:
    url = f"postgresql://stagebot:hunter2-secret@127.0.0.1:{closed_port}/history"
    with pytest.raises(UsageError) as refused:
        open_store(url, {}, StoreSettings())
    message = str(refused.value)
    assert "hunter2-secret" not in message
    assert f"127.0.0.1:{closed_port}" in message and "'history'" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [("mysql://root:pw-secret@db/x", "unsupported scheme"), ("not a url at all", "not a URL")],
)
def test_a_wrong_database_url_is_a_usage_error(url: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as refused:
        open_store(url, {}, StoreSettings())
    assert "pw-secret" not in str(refused.value)


def test_the_head_revision_constant_matches_the_migration_scripts() -> None:
    # Opening a database at HEAD_REVISION skips Alembic entirely: a new migration must move the constant too.
    from bot.store.schema import HEAD_REVISION, head_revision

    assert head_revision() == HEAD_REVISION
