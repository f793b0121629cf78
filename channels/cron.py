"""Cron schedules (factor 11): each tick of a schedule launches a new thread.

A schedule names a cron expression read in its own timezone (croniter computes the
ticks, daylight-saving changes included), an agent, a prompt and where to report.
Each tick becomes a trigger whose dedupe key and conversation are
``cron:<name>:<tick in UTC, ISO 8601>``: however many schedulers notice a tick, the
gateway's atomic append starts one thread for it and hands the others that thread.

Ticks are counted from a per-schedule cursor (kept by the caller, see ``Cursors``):
a tick noticed within ``grace`` seconds fires; older ticks were missed (no scheduler
was running) and follow ``catch_up``: ``"once"`` fires one launch, for the latest
missed tick; ``"skip"`` fires none. A schedule seen for the first time starts from now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.events import Trigger
from channels.config import ReportTo, load_entries, report_origin
from channels.gateway import Gateway

log = structlog.get_logger(__name__)

SECTION = "schedules"


class Schedule(BaseModel):
    """One ``[schedules.<name>]`` entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    cron: str = Field(
        description="minute hour day month weekday, and optionally seconds LAST (croniter's order, "
        "not Quartz's): '* * * * * */30' fires every 30 seconds"
    )
    timezone: str = "UTC"
    agent: str
    prompt: str = Field(min_length=1)
    report_to: ReportTo
    catch_up: Literal["once", "skip"] = "once"
    grace: float = Field(default=60.0, gt=0, description="seconds late a tick may fire and not be missed")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (e.g. '0 9 * * 1-5')")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use an IANA name, e.g. 'Europe/Paris')") from None
        return value

    def due(self, after: datetime, now: datetime) -> list[datetime]:
        """The ticks to fire at ``now`` (UTC, oldest first), of those after ``after``.

        Walks back from ``now``: ticks within ``grace`` fire; the first older one is the
        latest missed tick, which fires only when ``catch_up`` is ``"once"``."""
        ticks = croniter(self.cron, now.astimezone(ZoneInfo(self.timezone)) + timedelta(microseconds=1))
        on_time: list[datetime] = []
        missed: datetime | None = None
        while (tick := ticks.get_prev(datetime)) > after:
            if (now - tick).total_seconds() > self.grace:
                missed = tick
                break
            on_time.append(tick)
        if missed is not None and self.catch_up == "once":
            on_time.append(missed)
        elif missed is not None:
            log.info("cron.missed_skipped", schedule=self.name, latest=missed.astimezone(UTC).isoformat())
        return sorted(tick.astimezone(UTC) for tick in on_time)

    def next_ticks(self, now: datetime, count: int = 3) -> list[datetime]:
        """The next ``count`` ticks after ``now``, in the schedule's timezone (to check an expression)."""
        ticks = croniter(self.cron, now.astimezone(ZoneInfo(self.timezone)))
        return [ticks.get_next(datetime) for _ in range(count)]

    def trigger(self, tick: datetime, now: datetime) -> tuple[str, Trigger]:
        """The conversation and trigger of ``tick``; both are named after the tick, so a
        second scheduler's launch of the same tick is recognized as a duplicate."""
        name = f"cron:{self.name}:{tick.astimezone(UTC).isoformat()}"
        origin = report_origin(self.report_to, sender=f"schedule:{self.name}")
        return name, Trigger(at=now, text=self.prompt, origin=origin, key=name)


def load_schedules(path: Path) -> list[Schedule]:
    """The schedules in the TOML file at ``path`` (``OUTERLOOP_SCHEDULES``)."""
    return list(load_entries(path, SECTION, Schedule).values())


class Cursors(Protocol):
    """Up to when each schedule's ticks have been handled, shared by all schedulers."""

    def since(self, schedule: str, now: datetime) -> datetime:
        """The schedule's cursor; a schedule never seen before gets (and returns) ``now``."""
        ...

    def advance(self, schedule: str, to: datetime) -> None:
        """Move the cursor to ``to`` unless it is there or later already."""
        ...


@dataclass(frozen=True)
class Fired:
    schedule: str
    tick: datetime
    thread_id: str
    launched: bool
    """False when another scheduler had launched this tick already."""


def fire_due(schedules: list[Schedule], gateway: Gateway, cursors: Cursors, now: datetime) -> list[Fired]:
    """Launch a thread for every due tick of every schedule; returns what fired."""
    fired = []
    for schedule in schedules:
        for tick in schedule.due(cursors.since(schedule.name, now), now):
            route, trigger = schedule.trigger(tick, now)
            submitted = gateway.converse(route, schedule.agent, trigger)
            fired.append(Fired(schedule.name, tick, submitted.thread.id, submitted.applied))
            log.info(
                "cron.fired" if submitted.applied else "cron.already_fired",
                schedule=schedule.name,
                tick=tick.isoformat(),
                thread_id=submitted.thread.id,
            )
        # Only once every due tick is launched: after a failure the next tick tries again.
        cursors.advance(schedule.name, now)
    return fired
