"""Every configured HTTP health endpoint answers as configured."""

from __future__ import annotations

import httpx
import pytest


def test_health_endpoint_answers(health_target: tuple[str, str], health_status: int, timeout_s: float) -> None:
    name, url = health_target
    if not url:
        pytest.fail("STAGING_HEALTH_URLS is not set: the staging suite needs it (see suites/staging/conftest.py)")
    try:
        answer = httpx.get(url, timeout=timeout_s, follow_redirects=False)
    except httpx.HTTPError as exc:
        pytest.fail(f"{name} is unreachable: GET {url} failed: {type(exc).__name__}: {exc}")
    assert answer.status_code == health_status, f"{name} is unavailable: GET {url} answered {answer.status_code}"
