"""The pytest plugin the runner loads with `-p suites.plugin`: one JSON line per event, written as it happens.

It runs inside the tier's interpreter, which may be another Python with another pytest, so it imports only the
standard library and pytest, and uses no syntax newer than Python 3.8. It writes to the file descriptor named by
`$STAGEBOT_EVENTS_FD` (a pipe the runner reads) and stays silent when that is unset, so a stray `-p` changes nothing.

Record types (`"type"`): session_start, collect_error, collect_skip, deselected, collected, test_start, phase,
warning, session_finish. `suites.events` turns them into typed values.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from typing import IO, Any

import pytest

from suites.wire import FD_VARIABLE

# Long tracebacks are cut: the message's head names the problem; the runner redacts and stores only this much.
_MAX_TEXT = 4000

_stream: IO[str] | None = None


def _emit(record: dict[str, Any]) -> None:
    if _stream is None:
        return
    _stream.write(json.dumps(record, default=str) + "\n")
    _stream.flush()


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "\n[... cut]"


def _plugin_names(config: pytest.Config) -> list[str]:
    names = []
    for name, plugin in config.pluginmanager.list_name_plugin():
        if plugin is not None and not config.pluginmanager.is_blocked(name):
            names.append(name)
    return sorted(names)


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except (ValueError, KeyError):
        return None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    global _stream
    fd = os.environ.get(FD_VARIABLE)
    if not fd or hasattr(config, "workerinput"):  # an xdist worker: the controller reports for it
        return
    _stream = os.fdopen(int(fd), "w", encoding="utf-8", closefd=False)
    pm = config.pluginmanager
    _emit(
        {
            "type": "session_start",
            "pytest_version": pytest.__version__,
            "python": sys.version.split()[0],
            "warnings_plugin": pm.has_plugin("warnings") and not pm.is_blocked("warnings"),
            "unraisable_plugin": pm.has_plugin("unraisableexception") and not pm.is_blocked("unraisableexception"),
            "filterwarnings": [str(f) for f in (_ini(config, "filterwarnings") or [])],
            "pythonwarnings": list(getattr(config.known_args_namespace, "pythonwarnings", None) or [])
            + list(sys.warnoptions),
            "asyncio_mode": _ini(config, "asyncio_mode"),
            "plugins": _plugin_names(config),
        }
    )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit({"type": "collect_error", "nodeid": report.nodeid, "message": _cut(report.longreprtext)})
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _emit({"type": "collect_skip", "nodeid": report.nodeid, "reason": _cut(str(reason))})


def pytest_deselected(items: list[pytest.Item]) -> None:
    _emit({"type": "deselected", "nodeids": [item.nodeid for item in items]})


def _is_async(item: pytest.Item) -> bool:
    function = getattr(item, "obj", None)
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _awaiter(item: pytest.Item, plugins: set[str], asyncio_mode: Any) -> str | None:
    """Return which plugin will await this async test, or None when none will."""
    markers = {m.name for m in item.iter_markers()}
    parent = getattr(item, "parent", None)
    test_case = getattr(parent, "obj", None)
    if inspect.isclass(test_case) and any(base.__name__ == "TestCase" for base in inspect.getmro(test_case)):
        # unittest runs `async def test_*` only in an IsolatedAsyncioTestCase; a plain TestCase never awaits it.
        return "unittest" if any(b.__name__ == "IsolatedAsyncioTestCase" for b in inspect.getmro(test_case)) else None
    has_asyncio = any(name == "asyncio" or name.endswith("pytest_asyncio.plugin") for name in plugins)
    if has_asyncio and ("asyncio" in markers or asyncio_mode == "auto"):
        return "pytest-asyncio"
    if "anyio" in markers and any("anyio" in name for name in plugins):
        return "anyio"
    if "trio" in markers and any("trio" in name for name in plugins):
        return "pytest-trio"
    return None


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    plugins = set(_plugin_names(config))
    mode = _ini(config, "asyncio_mode")
    unmarked = [item.nodeid for item in session.items if _is_async(item) and _awaiter(item, plugins, mode) is None]
    _emit({"type": "collected", "count": len(session.items), "unmarked_async": unmarked})


def pytest_runtest_logstart(nodeid: str, location: Any) -> None:
    _emit({"type": "test_start", "nodeid": nodeid})


def _message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return _cut(str(crash.message))
    if isinstance(report.longrepr, tuple):
        return _cut(str(report.longrepr[2]))
    return _cut(report.longreprtext) if report.longrepr else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    skip_reason = None
    if report.skipped and isinstance(report.longrepr, tuple):
        skip_reason = str(report.longrepr[2])
    _emit(
        {
            "type": "phase",
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "duration_s": report.duration,
            "message": _message(report) if report.failed else "",
            "skip_reason": skip_reason,
            "wasxfail": getattr(report, "wasxfail", None),
            "user_properties": [[str(k), str(v)] for k, v in report.user_properties],
        }
    )


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    _emit(
        {
            "type": "warning",
            "nodeid": nodeid,
            "when": when,
            "category": warning_message.category.__name__,
            "message": _cut(str(warning_message.message)),
            "filename": str(warning_message.filename),
            "lineno": warning_message.lineno,
        }
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"type": "session_finish", "exitstatus": int(exitstatus)})
