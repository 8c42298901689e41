"""Load and validate `stagebot.toml`.

Where the file comes from: `--config PATH`, else `$STAGEBOT_CONFIG`, else `./stagebot.toml`.
`${VAR}` in any string is replaced from the environment (`$${` stays a literal `${`), so secrets stay out of the file.
Every problem is a `ConfigError` naming the file, the dotted key and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

from bot.errors import ConfigError

ProbeKind = Literal["http", "websocket", "tcp", "postgres", "redis"]
PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)

# Which URL schemes each probe kind accepts.
_SCHEMES: dict[str, tuple[str, ...]] = {
    "http": ("http", "https"),
    "websocket": ("ws", "wss"),
    "tcp": ("tcp",),
    "postgres": ("postgresql", "postgres"),
    "redis": ("redis", "rediss"),
}

# An env var whose name looks like this holds a secret: its value is redacted wherever it would be shown.
_SECRET_NAME = re.compile(r"(?i)token|secret|passw|jwt|key|credential|auth")
_ENV_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

DEFAULT_CONFIG_NAME = "stagebot.toml"


@dataclass(frozen=True)
class CloudRunRef:
    """Where a service runs on Cloud Run."""

    project: str
    region: str
    service: str

    @property
    def resource_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.service}"


@dataclass(frozen=True)
class ServiceConfig:
    """One `[services.NAME]` table: what to probe and how to judge it."""

    name: str
    kind: ProbeKind
    url: str
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    degraded_ms: float = 3000.0
    timeout_s: float = 10.0
    impact: str = ""
    depends_on: tuple[str, ...] = ()
    send: str | None = None  # websocket: sent after the handshake
    expect: str | None = None  # websocket: regex a reply must match
    expect_body: str | None = None  # http: regex the body must match
    headers: Mapping[str, str] = field(default_factory=dict)  # http: sent with the probe (values are secrets)
    retries: int = 1
    cloud_run: CloudRunRef | None = None
    remediable: bool = False
    approvers: tuple[str, ...] | None = None  # None: the [remediation] approvers


@dataclass(frozen=True)
class TierConfig:
    """One `[tiers.NAME]` table: a pytest selection and the rules its verdict is judged by."""

    name: str
    paths: tuple[str, ...]
    root: Path
    args: tuple[str, ...] = ()
    python: str = ""
    timeout_s: float = 1800.0
    min_test_s: float = 0.0
    max_skipped_ratio: float = 0.0
    depends_on: tuple[str, ...] = ()
    mock_markers: tuple[str, ...] = (r"(?i)\bmock", r"(?i)fall(ing)?\s*back")
    env: Mapping[str, str] = field(default_factory=dict)
    impact: str = ""
    description: str = ""


@dataclass(frozen=True)
class ProbeSettings:
    retries: int = 1
    retry_delay_s: float = 0.0
    deadline_s: float | None = None  # None: derived from the slowest service's timeout and retries


@dataclass(frozen=True)
class StoreSettings:
    url: str | None = None  # None: $DATABASE_URL, else the default SQLite file
    keep_days: int = 90


@dataclass(frozen=True)
class E2ESettings:
    max_parallel: int = 2  # tiers run at once by `e2e run all`


@dataclass(frozen=True)
class SlackSettings:
    staging_command: str = "/staging"
    e2e_command: str = "/e2e"
    allowed_channels: tuple[str, ...] = ()  # empty: every channel
    allowed_users: tuple[str, ...] = ()  # empty together with allowed_groups: everyone may run tiers
    allowed_groups: tuple[str, ...] = ()
    max_concurrent_runs: int = 4


@dataclass(frozen=True)
class RemediationSettings:
    approvers: tuple[str, ...] = ()
    expiry_minutes: float = 30.0
    two_person: bool = False
    dry_run: bool = False
    max_actions_per_hour: int = 3
    recovery_timeout_s: float = 300.0  # after an action: how long to wait for a ready revision and a green probe


@dataclass(frozen=True)
class Config:
    """A validated configuration."""

    source: str
    environment: str
    services: Mapping[str, ServiceConfig]
    tiers: Mapping[str, TierConfig] = field(default_factory=dict)
    probes: ProbeSettings = field(default_factory=ProbeSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    e2e: E2ESettings = field(default_factory=E2ESettings)
    slack: SlackSettings = field(default_factory=SlackSettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    secrets: frozenset[str] = frozenset()  # configured secret values: redacted wherever they would be shown

    def round_deadline_s(self) -> float:
        """Return the deadline for one probe round: long enough for every probe's tries, plus slack."""
        if self.probes.deadline_s is not None:
            return self.probes.deadline_s
        worst = max(
            (s.timeout_s * (s.retries + 1) + self.probes.retry_delay_s * s.retries for s in self.services.values()),
            default=0.0,
        )
        return worst + 1.0


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """Return the config file to read: `--config`, else `$STAGEBOT_CONFIG`, else `./stagebot.toml`."""
    if cli_path:
        return Path(cli_path)
    if environ.get("STAGEBOT_CONFIG"):
        return Path(environ["STAGEBOT_CONFIG"])
    return cwd / DEFAULT_CONFIG_NAME


def load_config(path: Path, environ: Mapping[str, str]) -> Config:
    """Read, expand and validate a config file."""
    source = str(path)
    try:
        raw_text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found (pass --config PATH or set STAGEBOT_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read the file: {exc}") from None
    return parse_config(raw_text, source=source, environ=environ, base_dir=path.resolve().parent)


def parse_config(text: str, *, source: str, environ: Mapping[str, str], base_dir: Path) -> Config:
    """Validate TOML text into a `Config`; `base_dir` anchors relative paths such as a tier's root."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    secrets: set[str] = set()
    expanded = _expand(raw, "", _Expansion(source, environ, secrets))
    return _Parser(source, base_dir, secrets).config(cast(dict[str, Any], expanded))


@dataclass
class _Expansion:
    source: str
    environ: Mapping[str, str]
    secrets: set[str]


def _is_secret_key(key: str) -> bool:
    # Values under a tier's `env` or a probe's `headers` are credentials by construction.
    return ".env." in f".{key}." or ".headers." in f".{key}."


def _expand(value: object, key: str, ctx: _Expansion) -> object:
    if isinstance(value, dict):
        return {k: _expand(v, f"{key}.{k}" if key else k, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{key}[{i}]", ctx) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if name not in ctx.environ:
            raise ConfigError(ctx.source, key, f"environment variable {name} is not set (referenced as ${{{name}}})")
        found = ctx.environ[name]
        if found and (_SECRET_NAME.search(name) or _is_secret_key(key)):
            ctx.secrets.add(found)
        return found

    result = _ENV_REF.sub(substitute, value)
    if _is_secret_key(key) and result:
        ctx.secrets.add(result)
    return result


class _Parser:
    """Typed reads from the raw TOML tree; every failure names its key."""

    def __init__(self, source: str, base_dir: Path, secrets: set[str]) -> None:
        self.source = source
        self.base_dir = base_dir
        self.secrets = secrets

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    # -- primitive readers -------------------------------------------------
    def table(self, raw: Mapping[str, Any], key: str, allowed: set[str], full: str) -> dict[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(full, f"expected a table, got {_describe(value)}")
        unknown = sorted(set(value) - allowed) if allowed else []
        if unknown:
            raise self.fail(f"{full}.{unknown[0]}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")
        return value

    def string(self, raw: Mapping[str, Any], key: str, full: str, default: str | None = None) -> str:
        value = raw.get(key, default)
        if value is None:
            raise self.fail(full, "is required (expected a string)")
        if not isinstance(value, str):
            raise self.fail(full, f"expected a string, got {_describe(value)}")
        return value

    def optional_string(self, raw: Mapping[str, Any], key: str, full: str) -> str | None:
        return self.string(raw, key, full) if key in raw else None

    def number(self, raw: Mapping[str, Any], key: str, full: str, default: float, minimum: float = 0.0) -> float:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(full, f"expected a number, got {_describe(value)}")
        if value < minimum:
            raise self.fail(full, f"expected a number >= {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, raw: Mapping[str, Any], key: str, full: str, default: int, minimum: int = 0) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(full, f"expected a whole number, got {_describe(value)}")
        if value < minimum:
            raise self.fail(full, f"expected a whole number >= {minimum}, got {value!r}")
        return value

    def boolean(self, raw: Mapping[str, Any], key: str, full: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(full, f"expected true or false, got {_describe(value)}")
        return value

    def strings(self, raw: Mapping[str, Any], key: str, full: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(full, f"expected a list of strings, got {_describe(value)}")
        return tuple(value)

    def string_map(self, raw: Mapping[str, Any], key: str, full: str) -> dict[str, str]:
        value = raw.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.fail(full, f"expected a table of strings, got {_describe(value)}")
        return dict(value)

    def regex(self, raw: Mapping[str, Any], key: str, full: str) -> str | None:
        pattern = self.optional_string(raw, key, full)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(full, f"not a valid regular expression: {exc}") from None
        return pattern

    # -- sections ----------------------------------------------------------
    def config(self, raw: dict[str, Any]) -> Config:
        top_keys = {"environment", "probes", "services", "tiers", "store", "e2e", "slack", "remediation"}
        unknown = sorted(set(raw) - top_keys)
        if unknown:
            raise self.fail(unknown[0], f"unknown section (expected one of: {', '.join(sorted(top_keys))})")
        env = self.table(raw, "environment", {"name"}, "environment")
        probes = self.probe_settings(self.table(raw, "probes", {"retries", "retry_delay_s", "deadline_s"}, "probes"))
        services_raw = self.table(raw, "services", set(), "services")
        if not services_raw:
            raise self.fail("services", "at least one [services.NAME] table is required")
        services = {name: self.service(name, body, probes) for name, body in services_raw.items()}
        self.check_dependencies(services)
        tiers_raw = self.table(raw, "tiers", set(), "tiers")
        tiers = {name: self.tier(name, body, services) for name, body in tiers_raw.items()}
        if "all" in tiers:
            raise self.fail("tiers.all", "the name 'all' is reserved: it runs every tier")
        return Config(
            source=self.source,
            environment=self.string(env, "name", "environment.name", default="staging"),
            services=services,
            tiers=tiers,
            probes=probes,
            store=self.store_settings(self.table(raw, "store", {"url", "keep_days"}, "store")),
            e2e=E2ESettings(
                max_parallel=self.integer(
                    self.table(raw, "e2e", {"max_parallel"}, "e2e"), "max_parallel", "e2e.max_parallel", 2, 1
                )
            ),
            slack=self.slack_settings(raw),
            remediation=self.remediation_settings(raw),
            secrets=frozenset(self.secrets),
        )

    def probe_settings(self, raw: dict[str, Any]) -> ProbeSettings:
        deadline = raw.get("deadline_s")
        return ProbeSettings(
            retries=self.integer(raw, "retries", "probes.retries", 1),
            retry_delay_s=self.number(raw, "retry_delay_s", "probes.retry_delay_s", 0.0),
            deadline_s=None if deadline is None else self.number(raw, "deadline_s", "probes.deadline_s", 0, 0.001),
        )

    def service(self, name: str, body: object, probes: ProbeSettings) -> ServiceConfig:
        key = f"services.{name}"
        if not _NAME.match(name):
            raise self.fail(key, "a service name may hold letters, digits, '_', '.' and '-'")
        allowed = {
            "kind", "url", "expect_status", "degraded_ms", "timeout_s", "impact", "depends_on", "send", "expect",
            "expect_body", "headers", "retries", "cloud_run", "remediable", "approvers",
        }  # fmt: skip
        raw = self.table({"t": body}, "t", allowed, key)
        kind = self.string(raw, "kind", f"{key}.kind")
        if kind not in PROBE_KINDS:
            raise self.fail(f"{key}.kind", f"expected one of {', '.join(PROBE_KINDS)}, got {kind!r}")
        url = self.string(raw, "url", f"{key}.url")
        self.check_url(url, kind, f"{key}.url")
        expect_status = raw.get("expect_status", [])
        if not isinstance(expect_status, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in expect_status
        ):
            raise self.fail(f"{key}.expect_status", "expected a list of HTTP status codes (100-599)")
        if kind != "websocket" and ("send" in raw or "expect" in raw):
            raise self.fail(f"{key}.send", "send/expect apply to websocket services only")
        if kind != "http" and ("expect_body" in raw or "headers" in raw or expect_status):
            raise self.fail(f"{key}.{kind}", "expect_status, expect_body and headers apply to http services only")
        approvers = raw.get("approvers")
        return ServiceConfig(
            name=name,
            kind=cast(ProbeKind, kind),
            url=url,
            expect_status=tuple(expect_status),
            degraded_ms=self.number(raw, "degraded_ms", f"{key}.degraded_ms", 3000.0),
            timeout_s=self.number(raw, "timeout_s", f"{key}.timeout_s", 10.0, 0.001),
            impact=self.string(raw, "impact", f"{key}.impact", default=""),
            depends_on=self.strings(raw, "depends_on", f"{key}.depends_on"),
            send=self.optional_string(raw, "send", f"{key}.send"),
            expect=self.regex(raw, "expect", f"{key}.expect"),
            expect_body=self.regex(raw, "expect_body", f"{key}.expect_body"),
            headers=self.string_map(raw, "headers", f"{key}.headers"),
            retries=self.integer(raw, "retries", f"{key}.retries", probes.retries),
            cloud_run=self.cloud_run(raw.get("cloud_run"), f"{key}.cloud_run"),
            remediable=self.boolean(raw, "remediable", f"{key}.remediable", False),
            approvers=None if approvers is None else self.strings(raw, "approvers", f"{key}.approvers"),
        )

    def check_url(self, url: str, kind: str, key: str) -> None:
        parts = urlsplit(url)
        schemes = _SCHEMES[kind]
        if parts.scheme not in schemes:
            wanted = " or ".join(f"{s}://" for s in schemes)
            raise self.fail(key, f"a {kind} target must start with {wanted}, got {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise self.fail(key, f"malformed URL {url!r}: the port is not a number") from None
        if not parts.hostname:
            raise self.fail(key, f"malformed URL {url!r}: no host")
        if kind == "tcp" and port is None:
            raise self.fail(key, f"a tcp target needs a port (tcp://host:port), got {url!r}")
        if parts.password:
            self.secrets.add(parts.password)

    def cloud_run(self, value: object, key: str) -> CloudRunRef | None:
        if value is None:
            return None
        raw = self.table({"t": value}, "t", {"project", "region", "service"}, key)
        return CloudRunRef(
            project=self.string(raw, "project", f"{key}.project"),
            region=self.string(raw, "region", f"{key}.region"),
            service=self.string(raw, "service", f"{key}.service"),
        )

    def check_dependencies(self, services: Mapping[str, ServiceConfig]) -> None:
        for service in services.values():
            for dep in service.depends_on:
                if dep not in services:
                    raise self.fail(
                        f"services.{service.name}.depends_on",
                        f"names no service: {dep!r} (known: {', '.join(sorted(services))})",
                    )
                if dep == service.name:
                    raise self.fail(f"services.{service.name}.depends_on", "a service cannot depend on itself")
        cycle = find_cycle({name: s.depends_on for name, s in services.items()})
        if cycle:
            raise self.fail(f"services.{cycle[0]}.depends_on", f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}")

    def tier(self, name: str, body: object, services: Mapping[str, ServiceConfig]) -> TierConfig:
        key = f"tiers.{name}"
        if not _NAME.match(name):
            raise self.fail(key, "a tier name may hold letters, digits, '_', '.' and '-'")
        allowed = {
            "paths", "root", "args", "python", "timeout_s", "min_test_s", "max_skipped_ratio", "depends_on",
            "mock_markers", "env", "impact", "description",
        }  # fmt: skip
        raw = self.table({"t": body}, "t", allowed, key)
        paths = self.strings(raw, "paths", f"{key}.paths")
        if not paths:
            raise self.fail(f"{key}.paths", "expected at least one pytest path or node id")
        depends_on = self.strings(raw, "depends_on", f"{key}.depends_on")
        for dep in depends_on:
            if dep not in services:
                raise self.fail(f"{key}.depends_on", f"names no service: {dep!r}")
        markers = self.strings(raw, "mock_markers", f"{key}.mock_markers") if "mock_markers" in raw else None
        for i, marker in enumerate(markers or ()):
            try:
                re.compile(marker)
            except re.error as exc:
                raise self.fail(f"{key}.mock_markers[{i}]", f"not a valid regular expression: {exc}") from None
        ratio = self.number(raw, "max_skipped_ratio", f"{key}.max_skipped_ratio", 0.0)
        if ratio > 1:
            raise self.fail(f"{key}.max_skipped_ratio", f"expected a fraction between 0 and 1, got {ratio:g}")
        defaults = TierConfig(name=name, paths=paths, root=self.base_dir)
        return TierConfig(
            name=name,
            paths=paths,
            root=(self.base_dir / self.string(raw, "root", f"{key}.root", default=".")).resolve(),
            args=self.strings(raw, "args", f"{key}.args"),
            python=self.string(raw, "python", f"{key}.python", default=""),
            timeout_s=self.number(raw, "timeout_s", f"{key}.timeout_s", 1800.0, 0.001),
            min_test_s=self.number(raw, "min_test_s", f"{key}.min_test_s", 0.0),
            max_skipped_ratio=ratio,
            depends_on=depends_on,
            mock_markers=defaults.mock_markers if markers is None else markers,
            env=self.string_map(raw, "env", f"{key}.env"),
            impact=self.string(raw, "impact", f"{key}.impact", default=""),
            description=self.string(raw, "description", f"{key}.description", default=""),
        )

    def store_settings(self, raw: dict[str, Any]) -> StoreSettings:
        url = self.optional_string(raw, "url", "store.url")
        return StoreSettings(url=url or None, keep_days=self.integer(raw, "keep_days", "store.keep_days", 90, 1))

    def slack_settings(self, raw_all: dict[str, Any]) -> SlackSettings:
        allowed = {
            "staging_command", "e2e_command", "allowed_channels", "allowed_users", "allowed_groups",
            "max_concurrent_runs",
        }  # fmt: skip
        raw = self.table(raw_all, "slack", allowed, "slack")
        commands = {}
        for key, default in (("staging_command", "/staging"), ("e2e_command", "/e2e")):
            command = self.string(raw, key, f"slack.{key}", default=default)
            if not re.fullmatch(r"/[a-z0-9_-]+", command):
                raise self.fail(f"slack.{key}", f"expected a slash command such as {default!r}, got {command!r}")
            commands[key] = command
        return SlackSettings(
            staging_command=commands["staging_command"],
            e2e_command=commands["e2e_command"],
            allowed_channels=self.strings(raw, "allowed_channels", "slack.allowed_channels"),
            allowed_users=self.strings(raw, "allowed_users", "slack.allowed_users"),
            allowed_groups=self.strings(raw, "allowed_groups", "slack.allowed_groups"),
            max_concurrent_runs=self.integer(raw, "max_concurrent_runs", "slack.max_concurrent_runs", 4, 1),
        )

    def remediation_settings(self, raw_all: dict[str, Any]) -> RemediationSettings:
        allowed = {"approvers", "expiry_minutes", "two_person", "dry_run", "max_actions_per_hour", "recovery_timeout_s"}
        raw = self.table(raw_all, "remediation", allowed, "remediation")
        return RemediationSettings(
            approvers=self.strings(raw, "approvers", "remediation.approvers"),
            expiry_minutes=self.number(raw, "expiry_minutes", "remediation.expiry_minutes", 30.0, 0.001),
            two_person=self.boolean(raw, "two_person", "remediation.two_person", False),
            dry_run=self.boolean(raw, "dry_run", "remediation.dry_run", False),
            max_actions_per_hour=self.integer(raw, "max_actions_per_hour", "remediation.max_actions_per_hour", 3, 0),
            recovery_timeout_s=self.number(raw, "recovery_timeout_s", "remediation.recovery_timeout_s", 300.0, 0.001),
        )


def find_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Return one dependency cycle as a list of names, or an empty list when the graph has none."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str]:
        if node in visiting:
            return visiting[visiting.index(node) :]
        if node in done:
            return []
        visiting.append(node)
        for dep in graph.get(node, ()):
            found = visit(dep)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return []


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    return f"{type(value).__name__} {value!r}"
