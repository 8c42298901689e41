"""History query time: `history` for one service over 7 days, with 10,000 runs and 100,000 probe results recorded.

Target (issue 3): under 50 ms of query time on SQLite and on PostgreSQL. Seeds a fresh SQLite file and a fresh
PostgreSQL database (dropped afterwards), runs ANALYZE as a live database's maintenance would, then times
`Store.history(service=..., since=now - 7d)` alone (no process start, no rendering). Prints figures; asserts nothing.

    python bench/history_query.py [--runs 10000] [--services 10] [--days 30] [--repeat 30]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bot.config import StoreSettings
from bot.store import Store, open_store
from bot.store.tables import ProbeResult, Run

TARGET_MS = 50.0


def seed(store: Store, *, runs: int, services: int, days: int, now: datetime) -> None:
    """Record `runs` finished status runs spread evenly over `days`, each with one result per service."""
    step = timedelta(days=days) / runs
    run_rows, probe_rows = [], []
    for i in range(runs):
        at = now - timedelta(days=days) + step * (i + 1)
        run_rows.append(
            {"id": i + 1, "kind": "status", "target": None, "requested_by": "bench", "origin": "cli",
             "state": "finished", "created_at": at, "started_at": at, "finished_at": at, "verdict": "up",
             "summary": f"{services}/{services} up", "details": {}, "owner": "bench:1", "heartbeat_at": at}
        )  # fmt: skip
        for s in range(services):
            down = (i * 7 + s) % 23 == 0  # a scattering of outages
            probe_rows.append(
                {"run_id": i + 1, "observed_at": at, "service": f"svc{s:02d}", "kind": "http",
                 "target": f"http://svc{s:02d}/health", "state": "down" if down else "up",
                 "status_code": 503 if down else 200, "latency_ms": 5.0 + (i * 13 + s * 7) % 250,
                 "error": "HTTP 503" if down else None, "caused_by": None, "attempts": 1, "timings": {}}
            )  # fmt: skip
    with store.engine.begin() as connection:
        connection.execute(sa.insert(Run), run_rows)
        connection.execute(sa.insert(ProbeResult), probe_rows)
        if connection.dialect.name == "postgresql":  # the ids were given: move the sequence past them
            connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs))"
            )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")


def time_history(store: Store, *, service: str, now: datetime, repeat: int) -> tuple[list[float], int]:
    """Return the query times in ms (after two warm-up calls) and how many samples the answer covered."""
    since = now - timedelta(days=7)
    for _ in range(2):
        report = store.history(since=since, until=now, service=service)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        report = store.history(since=since, until=now, service=service)
        times.append((time.perf_counter() - started) * 1000)
    return times, report.services[0].samples


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="stagebot-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'stagebot.sqlite3'}"


@contextmanager
def postgres_url(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"stagebot_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(label: str, url: str, args: argparse.Namespace, now: datetime) -> None:
    store = open_store(url, {}, StoreSettings(), now=now)
    try:
        started = time.perf_counter()
        seed(store, runs=args.runs, services=args.services, days=args.days, now=now)
        seeded_s = time.perf_counter() - started
        times, samples = time_history(store, service="svc03", now=now, repeat=args.repeat)
    finally:
        store.close()
    p50, worst = statistics.median(times), max(times)
    print(
        f"{label:<10} seeded {args.runs:,} runs / {args.runs * args.services:,} probe results in {seeded_s:.1f}s; "
        f"history(svc03, 7d) over {samples:,} samples, {args.repeat} reps: p50 {p50:.1f} ms, max {worst:.1f} ms; "
        f"p50 / target = {p50 / TARGET_MS:.2f}, max / target = {worst / TARGET_MS:.2f} (target {TARGET_MS:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--postgres", default=os.environ.get("STAGEBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    with sqlite_url() as url:
        bench("SQLite", url, args, now)
    with postgres_url(args.postgres) as url:
        bench("PostgreSQL", url, args, now)


if __name__ == "__main__":
    main()
