"""The replay guard: an exact replay is refused within the window; expired signatures are forgotten."""

from __future__ import annotations

import time

from bot.slack.server import ReplayGuard
from sandbox.slack_requests import signed_headers

SECRET = "sandbox-signing-secret-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_replay_is_refused_within_the_window_and_forgotten_after_it() -> None:
    clock = Clock()
    guard = ReplayGuard(SECRET, window_s=60, clock=clock)
    first = signed_headers(SECRET, b"a=1")
    assert not guard.is_replay(first, b"a=1")
    assert guard.is_replay(first, b"a=1")
    clock.now += 30
    second = signed_headers(SECRET, b"a=2")
    assert not guard.is_replay(second, b"a=2")
    clock.now += 31  # the first is past the window, the second is not
    assert not guard.is_replay(signed_headers(SECRET, b"a=3"), b"a=3")
    assert not guard.is_replay(first, b"a=1")
    assert guard.is_replay(second, b"a=2")


def test_retries_and_bad_signatures_are_never_replays() -> None:
    guard = ReplayGuard(SECRET)
    headers = signed_headers(SECRET, b"a=1")
    assert not guard.is_replay({**headers, "x-slack-retry-num": "1"}, b"a=1")
    assert not guard.is_replay({**headers, "x-slack-retry-num": "1"}, b"a=1")
    assert not guard.is_replay(headers, b"a=tampered")
    assert not guard.is_replay(headers, b"a=tampered")
