"""Render the Slack stand-in's channel as a person would read it in Slack, as terminal text. Pure.

Block Kit sections become paragraphs, code blocks are indented, context lines are dimmed, buttons are shown as
`[ Restart ]`, and thread replies hang under their message.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from typing import Any

from sandbox.slack import SlackMessage

_EMOJI = {
    ":red_circle:": "🔴", ":large_green_circle:": "🟢", ":large_yellow_circle:": "🟡", ":white_check_mark:": "✅",
    ":warning:": "⚠️ ", ":x:": "❌", ":hourglass:": "⌛", ":hourglass_flowing_sand:": "⏳", ":rotating_light:": "🚨",
    ":mag:": "🔎", ":link:": "🔗", ":test_tube:": "🧪", ":gear:": "⚙️ ", ":no_entry:": "⛔",
    ":page_facing_up:": "📄",
}  # fmt: skip
_MENTION = re.compile(r"<@([A-Z0-9]+)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")


class Style:
    """ANSI styling, or none (when the output is not a terminal)."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.colour else text

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.colour else text


def render_message(message: SlackMessage, *, style: Style, names: dict[str, str], indent: str = "") -> list[str]:
    """Return one message as lines: the author line, then its blocks."""
    who = names.get(message.user, message.user)
    lines = [indent + style.bold(who) + style.dim(f"  {_clock(message.ts)}" + ("  (edited)" if message.edits else ""))]
    body = render_blocks(message.blocks, style=style, names=names) if message.blocks else [_text(message.text, names)]
    # Only a reply's first line carries the thread arrow; the rest hang under it.
    hang = " " * len(indent)
    lines += [hang + "  " + line if line else "" for line in body]
    return lines


def render_blocks(blocks: Sequence[dict[str, Any]], *, style: Style, names: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(style.bold(_text(block["text"]["text"], names)))
        elif kind == "section":
            lines += _section(block["text"]["text"], names)
        elif kind == "context":
            for element in block.get("elements", []):
                lines += [style.dim(line) for line in _text(element.get("text", ""), names).splitlines()]
        elif kind == "actions":
            buttons = [f"[ {e['text']['text']} ]" for e in block.get("elements", []) if e.get("type") == "button"]
            lines.append(style.bold(" ".join(buttons)))
    return lines


def render_thread(
    parent: SlackMessage, replies: Sequence[SlackMessage], *, style: Style, names: dict[str, str]
) -> list[str]:
    """Return a message and its thread replies, the replies hanging under it."""
    lines = render_message(parent, style=style, names=names)
    for reply in replies:
        lines.append("")
        lines += render_message(reply, style=style, names=names, indent="   ↳ ")
    return lines


def _section(markdown: str, names: dict[str, str]) -> list[str]:
    lines: list[str] = []
    in_code = False
    for raw in _text(markdown, names).split("\n"):
        fences = raw.count("```")
        line = raw.replace("```", "")
        if in_code or fences:
            if line.strip():
                lines.append("    " + line)
        else:
            lines += textwrap.wrap(line, 110, subsequent_indent="  ") or [""]
        if fences % 2:
            in_code = not in_code
    return lines


def _text(markdown: str, names: dict[str, str]) -> str:
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", markdown)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    for code, glyph in _EMOJI.items():
        text = text.replace(code, glyph)
    return text


def _clock(ts: str) -> str:
    import time

    seconds = int(ts.split(".", 1)[0]) if ts.split(".", 1)[0].isdigit() else 0
    return time.strftime("%H:%M", time.localtime(seconds))
