"""docs/production.md stays true to the code: every variable the bot reads is documented, every link leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "production.md"
ENV_LITERAL = re.compile(r"\"((?:SLACK|STAGEBOT)_[A-Z_]+|DATABASE_URL|PORT)\"")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    """Return the anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def test_every_environment_variable_the_bot_reads_is_in_the_table() -> None:
    read = {name for source in (ROOT / "bot").rglob("*.py") for name in ENV_LITERAL.findall(source.read_text("utf-8"))}
    assert {"SLACK_BOT_TOKEN", "DATABASE_URL", "PORT", "STAGEBOT_LOG_FORMAT"} <= read  # the scan itself works
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", DOCS.read_text(encoding="utf-8"), re.MULTILINE)}
    assert read <= table, f"docs/production.md does not document {sorted(read - table)}"


@pytest.mark.parametrize("link", sorted(set(LINK.findall(DOCS.read_text(encoding="utf-8")))))
def test_every_link_resolves(link: str) -> None:
    if link.startswith(("http://", "https://")):
        return
    target, _, anchor = link.partition("#")
    path = (DOCS.parent / target).resolve() if target else DOCS
    assert path.exists(), f"{link}: no such file"
    if anchor:
        assert anchor in anchors_of(path), f"{link}: no such heading"


def test_the_readme_points_at_the_production_notes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/production.md)" in readme
    assert "running-in-production" in anchors_of(ROOT / "README.md")
