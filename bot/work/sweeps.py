"""The periodic sweeps every worker runs (and the scheduler with its own): recovery, owed
deliveries, retention. Only one process sweeps per interval, so a hundred workers don't
read the same indexes a hundred times."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import redis
import structlog

from bot.runtime import Runtime
from bot.state.store import key
from bot.work.recovery import recover_stalled

log = structlog.get_logger(__name__)

T = TypeVar("T")


def sweep_once(rt: Runtime, now: float) -> None:
    """Run the sweeps unless another process ran them within the sweep interval."""
    try:
        claimed = rt.connection.set(key("sweeping"), "1", nx=True, px=int(rt.settings.sweep_interval * 1000))
    except redis.RedisError:  # Redis away: the next heartbeat tries again
        log.warning("sweep.skipped", reason="redis unavailable")
        return
    if claimed:
        guarded("recovery", lambda: recover_stalled(rt, now))
        guarded("outbox", lambda: deliver_owed(rt, now))
        guarded("retention", rt.store.forget_expired)


def deliver_owed(rt: Runtime, now: float) -> list[str]:
    """Queue again the deliveries owed for longer than ``OUTERLOOP_DELIVERY_GRACE`` (their job
    was lost: Redis failed between storing an event and queueing its delivery, say)."""
    owed = rt.store.owed(until=now - rt.settings.delivery_grace)
    for thread_id, event_id in owed:
        rt.store.owe_again(thread_id, event_id, now)
        rt.queue_delivery(thread_id, event_id)
        log.warning("delivery.requeued", thread_id=thread_id, event_id=event_id)
    return [event_id for _, event_id in owed]


def guarded(name: str, sweep: Callable[[], T]) -> T | None:
    """Run one sweep; a sweep that fails (Redis away) is logged and tried again next time, and
    does not stop the others: None then."""
    try:
        return sweep()
    except Exception:  # a sweep that stops stops recovery, deliveries, deadlines: log, go on
        log.exception("sweep.failed", sweep=name)
        return None
