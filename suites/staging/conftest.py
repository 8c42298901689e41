"""Targets and credentials for the staging suite, read from the environment (README, "The staging suite").

  STAGING_HEALTH_URLS  name=url pairs, comma-separated: every HTTP health endpoint that must answer
  STAGING_HEALTH_STATUS  the status a health endpoint must answer with (default 200)
  STAGING_AUTH_URL     the auth service's base URL: POST {url}/token issues a token, GET {url}/verify checks it
  STAGING_WS_URL       the agent WebSocket
  STAGING_TIMEOUT_S    per request, and for the whole WebSocket exchange (default 10)

A missing variable fails the test that needs it, naming the variable: nothing here skips or falls back to a mock.
"""

from __future__ import annotations

import os

import pytest


def required(name: str) -> str:
    """Return an environment variable the suite cannot do without, or fail naming it."""
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: the staging suite needs it (see suites/staging/conftest.py)")
    return value


@pytest.fixture
def timeout_s() -> float:
    return float(os.environ.get("STAGING_TIMEOUT_S") or 10)


@pytest.fixture
def auth_url() -> str:
    return required("STAGING_AUTH_URL").rstrip("/")


@pytest.fixture
def ws_url() -> str:
    return required("STAGING_WS_URL")


@pytest.fixture
def health_status() -> int:
    return int(os.environ.get("STAGING_HEALTH_STATUS") or 200)


def health_targets() -> list[tuple[str, str]]:
    """Return (service, url) per configured health endpoint."""
    raw = os.environ.get("STAGING_HEALTH_URLS", "")
    targets = []
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        name, _, url = pair.partition("=")
        targets.append((name.strip(), url.strip()) if url else (pair, pair))
    return targets


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "health_target" in metafunc.fixturenames:
        targets = health_targets()
        # With nothing configured, one case still runs and fails naming the variable, rather than zero tests.
        params = targets or [("(none)", "")]
        metafunc.parametrize("health_target", params, ids=[name for name, _ in params])
