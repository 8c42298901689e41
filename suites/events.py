"""Typed events of one tier run: what the plugin streamed, turned into values, plus the progress they add up to.

A renderer (the terminal now, Slack later) folds events into a `Progress` with `advance` and shows it; the verdict
reads the full list. Every text field is already redacted when an event leaves the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class SessionStarted:
    """pytest configured itself: which pytest, and whether the warning channels the checks rely on are open."""

    pytest_version: str = ""
    python: str = ""
    warnings_plugin: bool = True
    unraisable_plugin: bool = True
    filterwarnings: tuple[str, ...] = ()
    pythonwarnings: tuple[str, ...] = ()
    asyncio_mode: str | None = None
    plugins: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectionError:
    """A file or package that failed to collect (an import error, a syntax error)."""

    nodeid: str
    message: str


@dataclass(frozen=True)
class CollectionSkipped:
    """A whole module skipped at collection (`pytest.importorskip`, `pytest.skip(allow_module_level=True)`)."""

    nodeid: str
    reason: str


@dataclass(frozen=True)
class Deselected:
    nodeids: tuple[str, ...]


@dataclass(frozen=True)
class Collected:
    """Collection finished: how many tests will run, and which async tests no plugin will await."""

    count: int
    unmarked_async: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestStarted:
    __test__ = False  # a value, not a pytest test class

    nodeid: str


@dataclass(frozen=True)
class TestPhase:
    """One phase (setup, call, teardown) of one test."""

    __test__ = False

    nodeid: str
    when: str
    outcome: str  # passed | failed | skipped (| rerun with pytest-rerunfailures)
    duration_s: float
    message: str = ""  # short failure message
    skip_reason: str | None = None
    wasxfail: str | None = None
    user_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class WarningRecorded:
    nodeid: str  # empty when raised outside any test
    category: str
    message: str
    when: str = ""
    filename: str = ""
    lineno: int = 0


@dataclass(frozen=True)
class SessionFinished:
    exitstatus: int


Event = (
    SessionStarted
    | CollectionError
    | CollectionSkipped
    | Deselected
    | Collected
    | TestStarted
    | TestPhase
    | WarningRecorded
    | SessionFinished
)
EventCallback = Callable[[Event], None]


def parse_event(record: Mapping[str, Any], redact: Callable[[str], str] = lambda text: text) -> Event | None:
    """Return the event a plugin record describes (its texts redacted), or None for a record of unknown type."""
    kind = record.get("type")
    if kind == "session_start":
        return SessionStarted(
            pytest_version=str(record.get("pytest_version", "")),
            python=str(record.get("python", "")),
            warnings_plugin=bool(record.get("warnings_plugin", True)),
            unraisable_plugin=bool(record.get("unraisable_plugin", True)),
            filterwarnings=tuple(str(f) for f in record.get("filterwarnings") or ()),
            pythonwarnings=tuple(str(f) for f in record.get("pythonwarnings") or ()),
            asyncio_mode=None if record.get("asyncio_mode") is None else str(record["asyncio_mode"]),
            plugins=tuple(str(p) for p in record.get("plugins") or ()),
        )
    if kind == "collect_error":
        return CollectionError(redact(str(record["nodeid"])), redact(str(record.get("message", ""))))
    if kind == "collect_skip":
        return CollectionSkipped(redact(str(record["nodeid"])), redact(str(record.get("reason", ""))))
    if kind == "deselected":
        return Deselected(tuple(redact(str(n)) for n in record.get("nodeids") or ()))
    if kind == "collected":
        return Collected(int(record["count"]), tuple(redact(str(n)) for n in record.get("unmarked_async") or ()))
    if kind == "test_start":
        return TestStarted(redact(str(record["nodeid"])))
    if kind == "phase":
        skip = record.get("skip_reason")
        xfail = record.get("wasxfail")
        return TestPhase(
            nodeid=redact(str(record["nodeid"])),
            when=str(record["when"]),
            outcome=str(record["outcome"]),
            duration_s=float(record.get("duration_s") or 0.0),
            message=redact(str(record.get("message") or "")),
            skip_reason=None if skip is None else redact(str(skip)),
            wasxfail=None if xfail is None else redact(str(xfail)),
            user_properties=tuple((str(k), redact(str(v))) for k, v in record.get("user_properties") or ()),
        )
    if kind == "warning":
        return WarningRecorded(
            nodeid=redact(str(record.get("nodeid") or "")),
            category=str(record.get("category", "")),
            message=redact(str(record.get("message", ""))),
            when=str(record.get("when", "")),
            filename=str(record.get("filename", "")),
            lineno=int(record.get("lineno") or 0),
        )
    if kind == "session_finish":
        return SessionFinished(int(record["exitstatus"]))
    return None


@dataclass(frozen=True)
class Counts:
    """Test counts as pytest's own summary line gives them (an xpass counts as passed)."""

    collected: int = 0  # items collected, deselected ones included ("collected N items")
    passed: int = 0
    failed: int = 0
    errors: int = 0  # setup/teardown errors and collection errors
    skipped: int = 0  # tests skipped, plus modules skipped at collection
    xfailed: int = 0
    deselected: int = 0

    @property
    def finished(self) -> int:
        return self.passed + self.failed + self.skipped + self.xfailed


@dataclass(frozen=True)
class Progress:
    """What a live view shows: counts so far and the test running now."""

    counts: Counts = field(default_factory=Counts)
    selected: int | None = None  # tests that will run; None until collection finished
    current: str | None = None
    finished: bool = False


def phase_category(phase: TestPhase) -> str | None:
    """Return the summary category pytest counts this report under, or None when it counts nothing."""
    if phase.outcome == "failed":
        return "failed" if phase.when == "call" else "errors"
    if phase.outcome == "skipped":
        return "xfailed" if phase.wasxfail is not None else "skipped"
    if phase.outcome == "passed" and phase.when == "call":
        return "passed"
    return None


def advance(progress: Progress, event: Event) -> Progress:
    """Return the progress after one more event."""
    counts = progress.counts
    if isinstance(event, CollectionError):
        return replace(progress, counts=replace(counts, errors=counts.errors + 1))
    if isinstance(event, CollectionSkipped):
        return replace(progress, counts=replace(counts, skipped=counts.skipped + 1))
    if isinstance(event, Deselected):
        return replace(progress, counts=replace(counts, deselected=counts.deselected + len(event.nodeids)))
    if isinstance(event, Collected):
        collected = event.count + counts.deselected
        return replace(progress, counts=replace(counts, collected=collected), selected=event.count)
    if isinstance(event, TestStarted):
        return replace(progress, current=event.nodeid)
    if isinstance(event, TestPhase):
        category = phase_category(event)
        if category is None:
            return progress
        return replace(progress, counts=replace(counts, **{category: getattr(counts, category) + 1}))
    if isinstance(event, SessionFinished):
        return replace(progress, current=None, finished=True)
    return progress


def count_events(events: Iterable[Event]) -> Counts:
    """Return the counts a whole run's events add up to."""
    progress = Progress()
    for event in events:
        progress = advance(progress, event)
    return progress.counts
