"""The auth service issues a token, accepts it, and refuses one it never issued."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def _call(method: str, url: str, timeout_s: float, **kwargs: Any) -> httpx.Response:
    try:
        return httpx.request(method, url, timeout=timeout_s, **kwargs)
    except httpx.HTTPError as exc:
        pytest.fail(f"auth is unreachable: {method} {url} failed: {type(exc).__name__}: {exc}")


def _issue_token(base: str, timeout_s: float) -> str:
    answer = _call("POST", f"{base}/token", timeout_s)
    assert answer.status_code == 200, f"auth is unavailable: POST {base}/token answered {answer.status_code}"
    token = answer.json().get("access_token")
    assert isinstance(token, str) and token, "auth answered 200 without an access_token"
    return token


def test_auth_issues_a_token_it_then_accepts(auth_url: str, timeout_s: float) -> None:
    token = _issue_token(auth_url, timeout_s)
    answer = _call("GET", f"{auth_url}/verify", timeout_s, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, f"auth refused its own token: GET {auth_url}/verify answered {answer.status_code}"
    assert answer.json().get("valid") is True


def test_auth_refuses_a_token_it_never_issued(auth_url: str, timeout_s: float) -> None:
    _issue_token(auth_url, timeout_s)  # the service is up: a refusal below is a decision, not an outage
    answer = _call("GET", f"{auth_url}/verify", timeout_s, headers={"Authorization": "Bearer not-a-real-token"})
    assert answer.status_code == 401, (
        f"auth accepted a forged token: GET {auth_url}/verify answered {answer.status_code}"
    )
