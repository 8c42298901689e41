"""The Cloud Run and Cloud Logging stand-ins on port 0, and the real google clients pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.cloud import CloudApis, build_cloud_apis
from bot.config import CloudRunRef
from sandbox.cloud_scenarios import (
    CAUSES,
    PROJECT,
    REGION,
    CloudEndpoints,
    CloudSandbox,
    build_scenario,
    demo_cloud,
    serve_cloud_in_thread,
)
from sandbox.staging import SandboxStaging, broken_staging


def ref(service: str) -> CloudRunRef:
    return CloudRunRef(PROJECT, REGION, service)


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def staging() -> SandboxStaging:
    return broken_staging()


@pytest.fixture
def cloud(now: datetime, staging: SandboxStaging) -> CloudSandbox:
    """The demo's story (api, auth, ...) plus one Cloud Run service per cause, named after it."""
    sandbox = demo_cloud(now=now, staging=staging)
    sandbox.install(build_scenario(cause, cause.replace("_", "-"), now=now) for cause in CAUSES)
    return sandbox


@pytest.fixture
def endpoints(cloud: CloudSandbox) -> Iterator[CloudEndpoints]:
    with serve_cloud_in_thread(cloud) as running:
        yield running


@pytest.fixture
def apis(endpoints: CloudEndpoints) -> Iterator[CloudApis]:
    built = build_cloud_apis(endpoints.environ(), project=PROJECT, timeout_s=5.0, poll_interval_s=0.01)
    yield built
    built.close()
