"""``outerloop scheduler --check``: each schedule's next ticks, so a wrong expression shows itself.

A cron expression that parses may still mean something else than intended (croniter reads a
sixth field as seconds *last*, where Quartz puts it first); three upcoming ticks make that plain.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.settings import Settings
from channels.cron import load_schedules

SHOWN_TICKS = 3


def next_ticks(settings: Settings, now: datetime | None = None) -> str:
    """One line per schedule: its name, expression and timezone, then its next ticks."""
    if settings.schedules_file is None:
        return "no schedules: OUTERLOOP_SCHEDULES is not set"
    schedules = load_schedules(settings.schedules_file)
    if not schedules:
        return f"no schedules in {settings.schedules_file}"
    moment = now or datetime.now(UTC)
    lines = []
    for schedule in schedules:
        ticks = ", ".join(tick.isoformat() for tick in schedule.next_ticks(moment, SHOWN_TICKS))
        lines.append(f"{schedule.name}  {schedule.cron!r} ({schedule.timezone}) -> agent {schedule.agent}")
        lines.append(f"  next: {ticks}")
    return "\n".join(lines)
