"""Jinja filters for the console: durations, times, JSON, and folding long text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment

from agent.events import Event
from agent.loop import describe_call
from bot.commands.timeline import describe
from channels.argument_form import choice_value

FOLD_CHARS = 600
FOLD_LINES = 12


def duration(seconds: float) -> str:
    """``seconds`` as people say it: 40 s, 3 min, 2 h 5 min, 3 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def since(moment: datetime, now: datetime) -> str:
    return duration((now - moment).total_seconds())


def until(moment: datetime, now: datetime) -> str:
    return duration((moment - now).total_seconds())


def utc(moment: datetime | float) -> str:
    if isinstance(moment, float | int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def long(text: str) -> bool:
    """Whether ``text`` is folded away behind a "show" toggle."""
    return len(text) > FOLD_CHARS or text.count("\n") > FOLD_LINES


def summary(event: Event) -> str:
    return describe(event)


def install(env: Environment) -> None:
    env.filters |= {
        "utc": utc,
        "iso": iso,
        "pretty": pretty,
        "describe": summary,
        "call": describe_call,
        "choice": choice_value,
    }
    env.globals |= {"since": since, "until": until, "long": long}
