"""``outerloop scheduler``: one ``tick`` every sweep interval, against a clock it is given.

A tick does two sweeps: threads whose worker died are queued again (``bot.recovery``),
and human requests past their deadline expire (``bot.expiry``). Any number of
schedulers may run: an expiry is a compare-and-set append, so a deadline expires once,
whoever gets there first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import structlog

from agent.events import RequestExpired
from bot.expiry import expire_due
from bot.recovery import recover_stalled
from bot.runtime import Runtime

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Tick:
    """What one tick did."""

    recovered: list[str] = field(default_factory=list)
    expired: list[RequestExpired] = field(default_factory=list)


class Scheduler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    @classmethod
    def from_runtime(cls, rt: Runtime) -> Scheduler:
        return cls(rt)

    def tick(self, now: datetime) -> Tick:
        """Run the sweeps once, as of ``now``. A sweep that fails (Redis away) is
        logged and tried again next tick; it does not stop the others."""
        return Tick(
            recovered=self._sweep("recovery", lambda: recover_stalled(self.rt, now.timestamp())),
            expired=self._sweep("expiry", lambda: expire_due(self.rt, now)),
        )

    def run(self) -> None:
        """Tick every ``OUTERLOOP_SWEEP_INTERVAL`` seconds, forever."""
        log.info("scheduler.started")
        while True:
            self.tick(self.rt.clock())
            time.sleep(self.rt.settings.sweep_interval)

    def _sweep(self, name: str, sweep: Callable[[], list[T]]) -> list[T]:
        try:
            return sweep()
        except Exception:  # a scheduler that stops stops every schedule and deadline: log, go on
            log.exception("scheduler.sweep_failed", sweep=name)
            return []
