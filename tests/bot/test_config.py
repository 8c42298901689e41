"""Configuration: what loads, and every bad input as one line naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import find_cycle, load_config, parse_config, resolve_config_path
from bot.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "staging.toml"

MINIMAL = """
[services.api]
kind = "http"
url = "https://api.example.com/health"
"""


def parse(text: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return parse_config(text, source="stagebot.toml", environ=environ or {}, base_dir=Path("/srv/project"))


def test_example_config_loads_with_its_secrets_from_the_environment() -> None:
    environ = {"STAGING_PG_PASSWORD": "pg-secret-1", "STAGING_TEST_JWT_TOKEN": "jwt-secret-2"}
    config = load_config(EXAMPLE, environ)
    assert set(config.services) == {"api", "auth", "frontend", "websocket", "postgres", "redis"}
    assert config.services["api"].degraded_ms == 3000
    assert config.services["auth"].degraded_ms == 2000
    assert config.services["websocket"].degraded_ms == 5000
    assert config.services["postgres"].degraded_ms == 3000
    assert config.services["websocket"].depends_on == ("api",)
    assert config.services["api"].cloud_run is not None
    assert config.services["api"].cloud_run.resource_name == "projects/acme-staging/locations/us-central1/services/api"
    assert config.tiers["p1"].env == {"STAGING_TEST_JWT_TOKEN": "jwt-secret-2"}
    assert config.tiers["p1"].root == EXAMPLE.parent.parent.resolve()
    assert {"pg-secret-1", "jwt-secret-2"} <= config.secrets


def test_defaults() -> None:
    config = parse(MINIMAL)
    api = config.services["api"]
    assert (api.expect_status, api.degraded_ms, api.timeout_s, api.retries, api.depends_on) == ((), 3000, 10, 1, ())
    assert config.environment == "staging"
    assert config.round_deadline_s() == 10 * 2 + 1


def test_env_references_expand_everywhere_and_dollar_dollar_escapes() -> None:
    config = parse(
        """
        [environment]
        name = "${ENV_NAME}"
        [services.api]
        kind = "http"
        url = "https://${HOST}/health"
        impact = "costs $${DOLLARS}"
        """,
        {"ENV_NAME": "staging-eu", "HOST": "api.eu.example.com"},
    )
    assert config.environment == "staging-eu"
    assert config.services["api"].url == "https://api.eu.example.com/health"
    assert config.services["api"].impact == "costs ${DOLLARS}"
    assert "api.eu.example.com" not in config.secrets  # a host name is not a secret


def test_secret_values_are_collected() -> None:
    config = parse(
        """
        [services.api]
        kind = "http"
        url = "https://api.example.com/health"
        headers = { Authorization = "Bearer ${API_TOKEN}" }
        [services.db]
        kind = "postgres"
        url = "postgresql://probe:literal-pw@db:5432/app"
        """,
        {"API_TOKEN": "tok-123456"},
    )
    assert {"tok-123456", "Bearer tok-123456", "literal-pw"} <= config.secrets


@pytest.mark.parametrize(
    ("text", "environ", "key", "problem"),
    [
        ("[services.api]\nkind = 'htp'\nurl = 'http://x'", {}, "services.api.kind", "expected one of http, websocket"),
        ("[services.api]\nkind = 'http'\nurl = 'api.example.com/health'", {}, "services.api.url",
         "must start with http:// or https://"),
        ("[services.api]\nkind = 'websocket'\nurl = 'https://x/ws'", {}, "services.api.url", "ws:// or wss://"),
        ("[services.api]\nkind = 'tcp'\nurl = 'tcp://db'", {}, "services.api.url", "needs a port"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x:port/'", {}, "services.api.url", "port is not a number"),
        ("[services.api]\nkind = 'http'\nurl = 'http:///health'", {}, "services.api.url", "no host"),
        ("[services.api]\nkind = 'http'\nurl = 'https://${API_HOST}/health'", {}, "services.api.url",
         "environment variable API_HOST is not set"),
        ("[services.ws]\nkind = 'http'\nurl = 'http://x'\ndepends_on = ['api']", {}, "services.ws.depends_on",
         "names no service: 'api'"),
        ("[services.a]\nkind = 'http'\nurl = 'http://a'\ndepends_on = ['b']\n"
         "[services.b]\nkind = 'http'\nurl = 'http://b'\ndepends_on = ['a']", {}, "services.a.depends_on",
         "dependency cycle: a -> b -> a"),
        ("[services.api\nkind = 'http'", {}, "", "not valid TOML"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x'\ndegraded_ms = 'fast'", {}, "services.api.degraded_ms",
         "expected a number"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x'\ndegraded_msx = 1", {}, "services.api.degraded_msx",
         "unknown key"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x'\nexpect = 'pong'", {}, "services.api.send",
         "websocket services only"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x'\nexpect_body = '('", {}, "services.api.expect_body",
         "not a valid regular expression"),
        ("[services.api]\nkind = 'http'\nurl = 'http://x'\nexpect_status = [999]", {}, "services.api.expect_status",
         "HTTP status codes"),
        ("[environment]\nname = 'x'", {}, "services", "at least one"),
        ("[servics.api]\nkind = 'http'", {}, "servics", "unknown section"),
        (MINIMAL + "[tiers.p1]\npaths = []", {}, "tiers.p1.paths", "at least one"),
        (MINIMAL + "[tiers.p1]\npaths = ['t']\ndepends_on = ['nope']", {}, "tiers.p1.depends_on", "names no service"),
        (MINIMAL + "[tiers.all]\npaths = ['t']", {}, "tiers.all", "reserved"),
        (MINIMAL + "[tiers.p1]\npaths = ['t']\nmax_skipped_ratio = 2", {}, "tiers.p1.max_skipped_ratio", "fraction"),
        (MINIMAL + "[slack]\nstaging_command = 'staging'", {}, "slack.staging_command", "slash command"),
    ],
)  # fmt: skip
def test_bad_input_names_the_file_and_the_key(text: str, environ: dict[str, str], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    message = str(caught.value)
    assert message.startswith(f"config error in stagebot.toml{': ' + key if key else ''}")
    assert problem in message
    assert "\n" not in message.strip() or "not valid TOML" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml", {})


def test_config_path_precedence(tmp_path: Path) -> None:
    assert resolve_config_path("a.toml", {"STAGEBOT_CONFIG": "b.toml"}, tmp_path) == Path("a.toml")
    assert resolve_config_path(None, {"STAGEBOT_CONFIG": "b.toml"}, tmp_path) == Path("b.toml")
    assert resolve_config_path(None, {}, tmp_path) == tmp_path / "stagebot.toml"


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": ("b",), "b": ()}, []),
        ({"a": ("b",), "b": ("c",), "c": ("a",)}, ["a", "b", "c"]),
        ({"x": (), "a": ("b",), "b": ("b",)}, ["b"]),
    ],
)
def test_find_cycle(graph: dict[str, tuple[str, ...]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle
