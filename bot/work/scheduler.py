"""``outerloop scheduler``: one ``tick`` every sweep interval, against a clock it is given.

A tick runs the sweeps: threads whose worker died are queued again (``bot.work.recovery``),
owed deliveries whose job was lost are queued again and expired threads leave the indexes
(``bot.work.sweeps``; every worker runs these too), due cron ticks launch threads
(``channels.cron``), and human requests past their deadline expire (``bot.work.expiry``).
Any number of schedulers may run: every sweep's writes are atomic appends with dedupe keys
or compare-and-set, so a cron tick launches one thread and a deadline expires once, whoever gets there first.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
import structlog

from agent.events import RequestExpired
from bot.runtime import Runtime
from bot.state.store import key
from bot.work.expiry import expire_due
from bot.work.recovery import recover_stalled
from bot.work.sweeps import deliver_owed, guarded
from channels.config import ConfigError
from channels.cron import Fired, Schedule, fire_due, load_schedules

log = structlog.get_logger(__name__)


class RedisCursors:
    """The schedules' cursors, one sorted set of schedule name -> Unix time (``channels.cron.Cursors``)."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self.key = key("schedule-cursors")

    def since(self, schedule: str, now: datetime) -> datetime:
        self.redis.zadd(self.key, {schedule: now.timestamp()}, nx=True)
        score = self.redis.zscore(self.key, schedule)
        assert score is not None, "set just above; cursors are never removed"
        return datetime.fromtimestamp(score, UTC)

    def advance(self, schedule: str, to: datetime) -> None:
        self.redis.zadd(self.key, {schedule: to.timestamp()}, gt=True)


@dataclass(frozen=True)
class Tick:
    """What one tick did."""

    recovered: list[str] = field(default_factory=list)
    redelivered: list[str] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    expired: list[RequestExpired] = field(default_factory=list)


class Scheduler:
    def __init__(self, rt: Runtime, schedules: list[Schedule] | None = None) -> None:
        self.rt = rt
        self.schedules = schedules or []
        for schedule in self.schedules:
            rt.agents.get(schedule.agent)  # fail at start, naming the agents there are
            if schedule.grace <= rt.settings.sweep_interval:
                raise ConfigError(
                    f"schedule {schedule.name}: grace ({schedule.grace:g} s) must be longer than "
                    f"OUTERLOOP_SWEEP_INTERVAL ({rt.settings.sweep_interval:g} s), "
                    "or every tick would count as missed"
                )
        self.cursors = RedisCursors(rt.connection)

    @classmethod
    def from_runtime(cls, rt: Runtime) -> Scheduler:
        """The scheduler for the schedules file named by ``OUTERLOOP_SCHEDULES``, if any."""
        path = rt.settings.schedules_file
        return cls(rt, load_schedules(path) if path is not None else [])

    def tick(self, now: datetime) -> Tick:
        """Run the sweeps once, as of ``now``. A sweep that fails (Redis away) is logged and
        tried again next tick; it does not stop the others."""
        guarded("retention", self.rt.store.forget_expired)
        return Tick(
            recovered=guarded("recovery", lambda: recover_stalled(self.rt, now.timestamp())) or [],
            redelivered=guarded("outbox", lambda: deliver_owed(self.rt, now.timestamp())) or [],
            fired=guarded("cron", lambda: fire_due(self.schedules, self.rt, self.cursors, now)) or [],
            expired=guarded("expiry", lambda: expire_due(self.rt, now)) or [],
        )

    def run(self) -> None:
        """Tick every ``OUTERLOOP_SWEEP_INTERVAL`` seconds until SIGTERM or SIGINT.

        A signal ends the wait between ticks, never a tick: a tick stopped halfway would leave
        a thread launched whose launch nobody logged."""
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        log.info("scheduler.started", schedules=[s.name for s in self.schedules])
        while not stop.is_set():
            self.tick(self.rt.clock())
            stop.wait(self.rt.settings.sweep_interval)
        log.info("scheduler.stopped")
