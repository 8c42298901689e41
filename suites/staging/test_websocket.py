"""Over the agent WebSocket, a user message yields the agent's five events, in order, within the timeout."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


def test_user_message_yields_agent_events_in_order(ws_url: str, timeout_s: float) -> None:
    url = ws_url
    deadline = time.monotonic() + timeout_s
    message_id = uuid.uuid4().hex
    seen: list[str] = []
    try:
        with connect(url, open_timeout=timeout_s, proxy=None) as socket:
            socket.send(json.dumps({"type": "user_message", "id": message_id, "text": "staging check"}))
            while "agent_completed" not in seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"websocket timed out after {timeout_s:g}s at {url}; events so far: {seen}")
                event = json.loads(socket.recv(timeout=remaining))
                if event.get("type") == "error":
                    pytest.fail(f"websocket answered an error at {url}: {event.get('error')}")
                seen.append(str(event.get("type")))
    except InvalidStatus as exc:
        pytest.fail(f"websocket is unavailable: {url} refused the upgrade with HTTP {exc.response.status_code}")
    except TimeoutError:
        pytest.fail(f"websocket timed out after {timeout_s:g}s at {url}; events so far: {seen}")
    except (OSError, WebSocketException) as exc:
        pytest.fail(f"websocket is unreachable: {url}: {type(exc).__name__}: {exc}")
    assert tuple(e for e in seen if e in AGENT_EVENTS) == AGENT_EVENTS, f"events out of order at {url}: {seen}"
