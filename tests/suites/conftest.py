"""Fixture suites copied to a temporary folder, and a tier built over them, for real pytest subprocesses."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.config import TierConfig
from bot.redaction import Redactor
from suites.engine import DependencyProbe, TierEngine
from suites.runner import TierRunner

FIXTURE_SUITES = Path(__file__).resolve().parents[1] / "fixtures" / "suites"


@pytest.fixture
def suites_dir(tmp_path: Path) -> Path:
    """A fresh copy of tests/fixtures/suites: pytest's caches and bytecode land there, not in the repo."""
    target = tmp_path / "suites"
    skip = shutil.ignore_patterns("conftest.py", "__pycache__", ".pytest_cache")
    shutil.copytree(FIXTURE_SUITES, target, ignore=skip)
    return target


def make_tier(root: Path, paths: Sequence[str], name: str = "t", **settings: Any) -> TierConfig:
    """Return a tier over fixture files, with a short timeout unless a test says otherwise."""
    settings.setdefault("timeout_s", 60.0)
    return TierConfig(name=name, paths=tuple(paths), root=root, **settings)


async def no_dependencies(names: frozenset[str]) -> list[tuple[str, str, str]]:
    # Only tiers with depends_on are probed; the tiers given this probe have none.
    raise AssertionError(f"a tier without depends_on was probed for {sorted(names)}")


def make_engine(
    secrets: Sequence[str] = (), probe: DependencyProbe = no_dependencies, grace_s: float = 3.0
) -> TierEngine:
    return TierEngine(TierRunner(Redactor(secrets), grace_s=grace_s), probe)


def is_gone(pid: int) -> bool:
    """Return whether a process has ended (a zombie waiting for its reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
