"""slack-app.yaml, read as Slack reads it: the commands the bot answers, the path it serves, the scopes its calls need.

The scopes are checked against the Web API methods the code in `bot/` actually calls: a new call without its scope
in the manifest would fail in a real workspace with `missing_scope`, so it fails here first.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackSettings
from bot.slack.requests import e2e_usage, staging_usage

ROOT = Path(__file__).resolve().parents[2]
EVENTS_PATH = "/slack/events"

# The bot-token scopes each Web API method needs (https://api.slack.com/methods, "Required scopes").
# `files_upload_v2` is files.getUploadURLExternal + files.completeUploadExternal; `views_*` need only a trigger.
SCOPES_BY_METHOD: dict[str, set[str]] = {
    "auth_test": set(),
    "chat_postMessage": {"chat:write"},
    # The bot reads public and private channels alike (a command works in either).
    "conversations_history": {"channels:history", "groups:history"},
    "conversations_replies": {"channels:history", "groups:history"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_getPermalink": set(),
    "files_upload_v2": {"files:write"},
    "usergroups_users_list": {"usergroups:read"},
    "users_info": {"users:read"},
    "conversations_info": {"channels:read", "groups:read"},
    "reactions_add": {"reactions:write"},
    "views_open": set(),
    "views_update": set(),
}
# Scopes no method call shows: the slash commands themselves, and posting in public channels the bot is not in
# (a command can be typed in any channel, and the answer goes there).
SCOPES_WITHOUT_A_CALL = {"commands", "chat:write.public"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "slack-app.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def web_api_calls(package: Path) -> dict[str, list[str]]:
    """Return the AsyncWebClient methods called in `package`, each with the files that call it."""
    calls: dict[str, list[str]] = {}
    for source in sorted(package.rglob("*.py")):
        for name in re.findall(r"\.([a-z]+_[A-Za-z0-9_]+)\(", source.read_text(encoding="utf-8")):
            if callable(getattr(AsyncWebClient, name, None)):
                calls.setdefault(name, []).append(str(source.relative_to(ROOT)))
    return calls


def test_the_commands_are_the_configured_defaults(manifest: dict[str, Any]) -> None:
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    defaults = SlackSettings()
    assert sorted(commands) == sorted([defaults.staging_command, defaults.e2e_command])


def test_every_request_url_is_the_bots_events_path(manifest: dict[str, Any]) -> None:
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls.append(manifest["settings"]["interactivity"]["request_url"])
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "https" and parsed.netloc == "YOUR-HOST" and parsed.path == EVENTS_PATH, url
    assert f'Route("{EVENTS_PATH}"' in (ROOT / "bot" / "slack" / "server.py").read_text(encoding="utf-8")


def test_interactivity_is_on_for_the_approval_buttons_and_http_mode_is_the_default(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (SlackSettings().staging_command, staging_usage(SlackSettings().staging_command)),
        (SlackSettings().e2e_command, e2e_usage(SlackSettings().e2e_command, ["p1"])),
    ],
)
def test_usage_hints_name_every_subcommand_the_bot_knows(
    manifest: dict[str, Any], command: str, usage: tuple[str, ...]
) -> None:
    (entry,) = [c for c in manifest["features"]["slash_commands"] if c["command"] == command]
    verbs = {line.removeprefix(command).split()[0] for line in usage}
    hinted = {part.split()[0] for part in entry["usage_hint"].split("|")}
    assert verbs == hinted


def test_the_scopes_cover_every_web_api_call_and_nothing_more(manifest: dict[str, Any]) -> None:
    calls = web_api_calls(ROOT / "bot")
    assert {"chat_postMessage", "chat_update", "files_upload_v2", "usergroups_users_list"} <= calls.keys()
    unmapped = {name: files for name, files in calls.items() if name not in SCOPES_BY_METHOD}
    assert not unmapped, f"add the scopes these calls need to SCOPES_BY_METHOD and slack-app.yaml: {unmapped}"
    needed = set().union(*(SCOPES_BY_METHOD[name] for name in calls))
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    assert needed <= granted, f"slack-app.yaml lacks {sorted(needed - granted)}"
    assert granted <= needed | SCOPES_WITHOUT_A_CALL, (
        f"no call needs {sorted(granted - needed - SCOPES_WITHOUT_A_CALL)}"
    )


def test_no_call_hides_its_method_from_the_scan() -> None:
    # `client.api_call("chat.postMessage", ...)` would call Slack without a named method the scan above can see.
    hidden = [str(p.relative_to(ROOT)) for p in (ROOT / "bot").rglob("*.py") if ".api_call(" in p.read_text("utf-8")]
    assert not hidden, f"call named AsyncWebClient methods, not api_call: {hidden}"


def test_display_texts_fit_slacks_limits(manifest: dict[str, Any]) -> None:
    shown = manifest["display_information"]
    assert len(shown["description"]) <= 140
    assert 175 <= len(shown["long_description"]) <= 4000
    for command in manifest["features"]["slash_commands"]:
        assert len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
