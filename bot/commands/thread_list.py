"""``outerloop threads``: one line per thread, coloured by status on a terminal.

``STATUSES`` spells the thread states for the ``--status`` option without importing the
kernel, so ``outerloop --help`` starts as fast as a bare click program; a test keeps it
equal to ``agent.thread.Status``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from agent.events import Event
    from bot.state.store import ThreadSummary

STATUSES = ("new", "running", "awaiting_human", "paused", "done", "failed", "cancelled")
COLOURS = {
    "running": "cyan",
    "awaiting_human": "yellow",
    "paused": "magenta",
    "done": "green",
    "failed": "red",
    "cancelled": "bright_black",
}
REQUEST_WIDTH = 60
"""Characters of a request's first line shown."""


def rows(summaries: Sequence[ThreadSummary], triggers: Mapping[str, Event | None], colour: bool) -> list[str]:
    """Id, created time, agent, channel, status and the first line of the request, per thread."""
    lines = []
    for summary in summaries:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(summary.created_at))
        channel, request = _origin(triggers.get(summary.id))
        state = f"{summary.status.value:<15}"
        if colour:
            state = click.style(state, fg=COLOURS.get(summary.status.value))
        lines.append(f"{summary.id}  {created}  {summary.agent:<10} {channel:<8} {state} {request}".rstrip())
    return lines


def _origin(first: Event | None) -> tuple[str, str]:
    """The channel a thread came from and its request's first line, cut to ``REQUEST_WIDTH``."""
    from agent.events import Trigger

    if not isinstance(first, Trigger):
        return "-", ""
    line = next((line.strip() for line in first.text.splitlines() if line.strip()), "")
    return first.origin.channel, line if len(line) <= REQUEST_WIDTH else line[: REQUEST_WIDTH - 1] + "…"
