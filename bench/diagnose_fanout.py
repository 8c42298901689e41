"""Diagnosis fan-out: 20 failing Cloud Run services whose stand-in APIs take 200 ms per answer.

Target (issue 6): diagnosing all 20 at once takes within 1.5 x one service's diagnosis, not 20 x. A diagnosis is
three calls in two rounds (get_service with list_revisions, then the logs), so one service takes about 400 ms.
For contrast, the same 20 on the default executor (min(32, cpus + 4) threads) show the queueing a dedicated,
sized executor avoids. Prints figures and ratios; asserts nothing.

    python bench/diagnose_fanout.py [--services 20] [--delay-ms 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from datetime import UTC, datetime

from bot.cloud import CloudApis, build_cloud_apis
from bot.config import CloudRunRef, ServiceConfig
from bot.diagnosis import Diagnoser
from sandbox.cloud_scenarios import CAUSES, PROJECT, REGION, CloudSandbox, build_scenario, serve_cloud_in_thread


def _services(count: int) -> list[ServiceConfig]:
    return [
        ServiceConfig(
            name=f"svc-{i:02d}",
            kind="http",
            url="http://127.0.0.1:9/",
            cloud_run=CloudRunRef(PROJECT, REGION, f"svc-{i:02d}"),
        )
        for i in range(count)
    ]


async def _time(diagnoser: Diagnoser, services: list[ServiceConfig]) -> float:
    started = time.perf_counter()
    found = await diagnoser.diagnose_all(services)
    elapsed = time.perf_counter() - started
    faults = [f.cause.value for d in found for f in d.findings if f.is_fault]
    if faults:
        raise SystemExit(f"the benchmark's diagnoses hit faults: {faults[:3]}")
    return elapsed * 1000


def _best(diagnoser: Diagnoser, services: list[ServiceConfig], rounds: int) -> float:
    return min(asyncio.run(_time(diagnoser, services)) for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3, help="best of N for each figure")
    args = parser.parse_args()
    # More concurrent requests to one host than requests' pool keeps (10) is expected here; its warning is noise.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)

    now = datetime.now(UTC)
    causes = [c for c in CAUSES if c != "quota_or_scaling"]  # every one of them a failing revision
    sandbox = CloudSandbox()
    sandbox.install(build_scenario(causes[i % len(causes)], f"svc-{i:02d}", now=now) for i in range(args.services))
    sandbox.run.delay_s = sandbox.logging.delay_s = args.delay_ms / 1000
    services = _services(args.services)
    threads = min(32, (os.cpu_count() or 1) + 4)

    with serve_cloud_in_thread(sandbox) as endpoints:
        apis: CloudApis = build_cloud_apis(endpoints.environ(), project=PROJECT)
        try:
            diagnoser = Diagnoser(apis.run, apis.logs, clock=lambda: now)
            one = _best(diagnoser, services[:1], args.rounds)
            many = _best(diagnoser, services, args.rounds)
        finally:
            apis.close()
        # An executor the size of the default one: what `asyncio.to_thread` alone would give.
        small = build_cloud_apis(endpoints.environ(), project=PROJECT, threads=threads)
        try:
            queued = _best(Diagnoser(small.run, small.logs, clock=lambda: now), services, 1)
        finally:
            small.close()

    print(f"stand-in answer delay: {args.delay_ms:.0f} ms per call; 3 calls per diagnosis in 2 rounds")
    print(f"1 service:                  {one:7.1f} ms")
    n = args.services
    print(f"{n} services at once:        {many:7.1f} ms  (ratio {many / one:.2f} x one service; target <= 1.5)")
    print(f"{n} services, default executor ({threads} threads): {queued:7.1f} ms  (ratio {queued / one:.2f} x)")


if __name__ == "__main__":
    main()
