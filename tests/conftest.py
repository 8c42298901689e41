"""Fixtures shared by every test: the machine's PostgreSQL and Redis, and a clean proxy environment.

Off CI a missing PostgreSQL or Redis skips the tests that need it, with the reason; under CI=true it fails them,
so a green CI always means those tests ran.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# slack-sdk honours HTTP(S)_PROXY even for 127.0.0.1 and ignores NO_PROXY (shared/reference/slack.md):
# every test talks to local servers only, so no proxy may apply.
for _proxy_var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_proxy_var, None)

POSTGRES_ADMIN_URL = os.environ.get("STAGEBOT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("STAGEBOT_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI=true, fail) when a machine service is not listening."""
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI=true this fails instead of skipping")
    pytest.skip(f"{reason} (start it: see README, Tests)")


@pytest.fixture(autouse=True)
def isolated_stagebot_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test its own STAGEBOT_HOME, so nothing a test records lands in the user's real store."""
    home = tmp_path_factory.mktemp("stagebot-home")
    monkeypatch.setenv("STAGEBOT_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("STAGEBOT_CONFIG", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The machine's PostgreSQL `test` database (trust auth)."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def postgres_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped at the end (psycopg URL form)."""
    import psycopg

    name = f"stagebot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis."""
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
