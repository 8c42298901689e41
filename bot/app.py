"""The composition root: the one place that reads the environment and builds the real clients.

Everything else takes its collaborators through constructors, so tests and the demo build the same objects with
clients pointed at local stand-ins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.cloud import build_cloud_apis
from bot.config import Config
from bot.diagnosis.collect import ProjectDiagnosers
from bot.errors import UsageError
from bot.redaction import Redactor
from bot.remediation.executor import RemediationExecutor
from bot.slack.access import GroupDirectory
from bot.slack.bot import SlackBot
from bot.slack.delivery import Deliverer
from bot.slack.remediation import RemediationDesk
from bot.slack.runs import RunTracker
from bot.slack.server import BotLifecycle
from bot.status import check_status
from bot.store import Store
from suites.engine import TierEngine, status_probe
from suites.runner import TierRunner

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackSecrets:
    bot_token: str
    signing_secret: str
    app_token: str | None  # Socket Mode only


def read_slack_secrets(environ: Mapping[str, str], *, socket_mode: bool) -> SlackSecrets:
    """Read the Slack secrets from the environment; a missing one is a one-line error naming the variable."""
    needed = ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"] + (["SLACK_APP_TOKEN"] if socket_mode else [])
    for name in needed:
        if not environ.get(name):
            raise UsageError(f"{name} is not set: the bot needs it to talk to Slack (see README, Running the bot)")
    return SlackSecrets(
        bot_token=environ["SLACK_BOT_TOKEN"],
        signing_secret=environ["SLACK_SIGNING_SECRET"],
        app_token=environ.get("SLACK_APP_TOKEN") if socket_mode else None,
    )


def slack_api_url(environ: Mapping[str, str]) -> str:
    """Return the Web API base URL: `$STAGEBOT_SLACK_API_URL` (tests, the sandbox), else Slack's."""
    url = environ.get("STAGEBOT_SLACK_API_URL") or DEFAULT_SLACK_API_URL
    return url if url.endswith("/") else url + "/"


def build_web_client(token: str, base_url: str) -> AsyncWebClient:
    """Return the Web API client: connection errors retried by the SDK; 429 and 5xx are the outbox's to retry."""
    return AsyncWebClient(token=token, base_url=base_url, timeout=15)


@dataclass
class RunningBot:
    bot: SlackBot
    app: AsyncApp
    lifecycle: BotLifecycle


async def assemble_bot(
    config: Config,
    store: Store,
    client: AsyncWebClient,
    signing_secret: str,
    *,
    environ: Mapping[str, str] | None = None,
    drain_timeout_s: float = 8.0,
    poll_interval_s: float = 2.0,
) -> RunningBot:
    """Check the token with `auth.test` once, then wire the bot, its Bolt app and its background loops."""
    try:
        identity = await client.auth_test()
    except SlackApiError as exc:
        raise UsageError(f"Slack refused the bot token: {exc.response.get('error', exc)}") from None
    except OSError as exc:
        raise UsageError(f"cannot reach the Slack API at {client.base_url}: {exc}") from None
    redactor = Redactor(config.secrets | {client.token or "", signing_secret})

    async def members_of(group: str) -> list[str]:
        response = await client.usergroups_users_list(usergroup=group)
        return list(response.get("users", []))

    deliverer = Deliverer(store, client, redact=redactor.redact)
    tracker = RunTracker(config.slack.max_concurrent_runs)
    groups = GroupDirectory(members_of)
    cloud_environ = environ if environ is not None else os.environ
    diagnoser = ProjectDiagnosers(lambda project: build_cloud_apis(cloud_environ, project=project), redactor=redactor)
    executor = RemediationExecutor(
        config, store, lambda project: diagnoser.apis_for(project).run, check_status, poll_interval_s=poll_interval_s
    )
    bot = SlackBot(
        config=config,
        store=store,
        deliverer=deliverer,
        tracker=tracker,
        groups=groups,
        check_status=check_status,
        diagnoser=diagnoser,
        remediation=RemediationDesk(config, store, deliverer, groups, executor, tracker, client),
        # Tier subprocesses get the bot's environment minus its own secrets; a tier's `env` adds what it needs.
        engine=TierEngine(TierRunner(redactor, environ=_without_slack_secrets(environ)), status_probe(config)),
    )
    app = bot.build_app(client, signing_secret, str(identity["user_id"]), str(identity.get("team_id", "")))
    return RunningBot(bot=bot, app=app, lifecycle=BotLifecycle(bot, drain_timeout_s=drain_timeout_s))


def _without_slack_secrets(environ: Mapping[str, str] | None) -> dict[str, str]:
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k not in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")}
