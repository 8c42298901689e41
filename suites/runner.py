"""Run one tier's pytest in a subprocess and stream its events.

pytest runs from an argument list (never a shell) in its own session, so the whole process group can be ended:
on timeout or cancel SIGTERM goes to the group, SIGKILL after a grace period, and after a normal exit the group is
swept the same way, so a child a test left behind does not outlive the run. Our plugin writes one JSON line per event
to a pipe we read as the run goes. The process return code is the truth about the run (pytest-signals.md: a
report's own exit status can say 0 when the process exits 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.config import TierConfig
from bot.errors import UsageError
from bot.redaction import Redactor
from suites.events import Event, EventCallback, parse_event
from suites.wire import FD_VARIABLE

PLUGIN_MODULE = "suites.plugin"
# The folder holding the `suites` package: put on PYTHONPATH so another interpreter can import our plugin.
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_OUTPUT_TAIL_CHARS = 4000
_LINE_LIMIT = 2**24  # a single event line may carry a long (already cut) traceback


@dataclass(frozen=True)
class PytestRun:
    """What one pytest subprocess did: its events in order and how it ended."""

    events: tuple[Event, ...]
    exit_code: int | None  # None when it never started
    duration_s: float
    timed_out: bool = False
    cancelled: bool = False
    output_tail: str = ""  # the end of pytest's own stdout/stderr, redacted


def build_command(tier: TierConfig, python: str) -> list[str]:
    """Return pytest's argument list for a tier: configured values only, nothing a user typed."""
    return [python, "-m", "pytest", "-p", PLUGIN_MODULE, "--continue-on-collection-errors", *tier.args, *tier.paths]


def resolve_python(tier: TierConfig, default: str = sys.executable) -> str:
    """Return the interpreter for a tier, or raise UsageError when it cannot be run."""
    python = tier.python or default
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise UsageError(f"tier {tier.name!r}: python {python!r} is not an executable file")
    return python


def check_tier(tier: TierConfig) -> None:
    """Raise UsageError when a tier cannot start: a missing root or an interpreter that cannot run."""
    if not tier.root.is_dir():
        raise UsageError(f"tier {tier.name!r}: root {str(tier.root)!r} does not exist or is not a folder")
    resolve_python(tier)


def build_environment(tier: TierConfig, base: Mapping[str, str], python: str, events_fd: int) -> dict[str, str]:
    """Return the subprocess environment: the base, the tier's env, and what our plugin needs."""
    env = {**base, **tier.env, FD_VARIABLE: str(events_fd)}
    if os.path.realpath(python) != os.path.realpath(sys.executable) or tier.python:
        # Another interpreter does not see our package unless told where it is.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
    return env


class TierRunner:
    """Run tiers' pytest subprocesses; secrets leave through the redactor."""

    def __init__(
        self,
        redactor: Redactor,
        *,
        environ: Mapping[str, str] | None = None,
        grace_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redact = redactor
        self._environ = dict(os.environ if environ is None else environ)
        self._grace_s = grace_s
        self._clock = clock

    async def run(
        self, tier: TierConfig, *, on_event: EventCallback | None = None, stop: asyncio.Event | None = None
    ) -> PytestRun:
        """Run a tier to its end, its timeout, or until `stop` is set; report every event to `on_event` live.

        Cancelling the calling task ends the process group too, then re-raises.
        """
        check_tier(tier)
        python = resolve_python(tier)
        events: list[Event] = []

        def deliver(event: Event) -> None:
            events.append(event)
            if on_event is not None:
                on_event(event)

        read_fd, write_fd = os.pipe()
        started = self._clock()
        with tempfile.TemporaryFile() as output:
            try:
                process = await asyncio.create_subprocess_exec(
                    *build_command(tier, python),
                    cwd=tier.root,
                    env=build_environment(tier, self._environ, python, write_fd),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            except OSError as exc:
                os.close(read_fd)
                os.close(write_fd)
                raise UsageError(f"tier {tier.name!r}: cannot start {python!r}: {exc.strerror or exc}") from None
            finally:
                with contextlib.suppress(OSError):
                    os.close(write_fd)  # the child holds its own copy; EOF comes when it (and its group) is gone
            reader = asyncio.create_task(self._read_events(read_fd, deliver))
            timed_out = cancelled = False
            try:
                timed_out, cancelled = await self._wait(process, tier.timeout_s, stop)
            finally:
                # Always sweep the group: after a timeout, a cancel, or a clean exit that left children behind.
                await self._end_group(process)
                await self._finish_reader(reader)
            output.seek(0, os.SEEK_END)
            size = output.tell()
            output.seek(max(0, size - _OUTPUT_TAIL_CHARS))
            tail = output.read().decode("utf-8", "replace")
        return PytestRun(
            events=tuple(events),
            exit_code=process.returncode,
            duration_s=self._clock() - started,
            timed_out=timed_out,
            cancelled=cancelled,
            output_tail=self._redact(tail),
        )

    async def _wait(
        self, process: asyncio.subprocess.Process, timeout_s: float, stop: asyncio.Event | None
    ) -> tuple[bool, bool]:
        """Wait for the process; return (timed_out, cancelled)."""
        exited = asyncio.ensure_future(process.wait())
        stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            waiting = {exited} if stopping is None else {exited, stopping}
            done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if stopping is not None:
                stopping.cancel()
        if exited in done:
            return False, False
        exited.cancel()
        return not done, bool(done)

    async def _end_group(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after the grace period, reap the leader."""
        pgid = process.pid  # start_new_session: the leader's pid is the group id
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGTERM)
            deadline = self._clock() + self._grace_s
            while _group_alive(pgid) and self._clock() < deadline:
                if process.returncode is None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(process.wait()), 0.05)
                else:
                    await asyncio.sleep(0.02)
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
        await process.wait()

    async def _read_events(self, fd: int, deliver: EventCallback) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_LINE_LIMIT)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while line := await reader.readline():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn line from a killed process: the missing session_finish tells the story
                event = parse_event(record, self._redact) if isinstance(record, dict) else None
                if event is not None:
                    deliver(event)
        finally:
            transport.close()

    async def _finish_reader(self, reader: asyncio.Task[None]) -> None:
        # The group is gone, so the pipe has no writer left unless something escaped the group; do not hang on it.
        done, _ = await asyncio.wait({reader}, timeout=self._grace_s)
        if not done:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        elif not reader.cancelled():
            reader.result()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Return whether a process of the group is still running (zombies waiting to be reaped do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces): state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False
