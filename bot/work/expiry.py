"""The expiry sweep: record a ``RequestExpired`` for every human request past its deadline.

The store keeps the threads whose pending request has a deadline in a sorted set, so
the sweep reads only the due ones. What an expiry turns into (a reminder, an
escalation, a time-out) is the kernel's decision (``agent.expiry.expire``); the sweep
appends it with a compare-and-set on the thread's log, so an expiry decided on a
thread that a human answered meanwhile is never written: the sweep loads the thread
again and finds nothing due. The channel shows the event like any other; a time-out
wakes the thread so the model hears of it.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from agent.events import RequestExpired
from agent.expiry import expire, is_due
from agent.thread import FINAL, Status, Thread
from bot.runtime import Runtime

log = structlog.get_logger(__name__)


def expire_due(rt: Runtime, now: datetime) -> list[RequestExpired]:
    """Expire every pending request whose deadline is at or before ``now``; returns the events."""
    recorded = []
    for thread_id in rt.store.expiring(now.timestamp()):
        event = _expire_one(rt, rt.store.load(thread_id), now)
        if event is not None:
            recorded.append(event)
    return recorded


def _expire_one(rt: Runtime, thread: Thread, now: datetime) -> RequestExpired | None:
    while True:
        pending = thread.pending
        if pending is None or not is_due(pending, now) or thread.status in (*FINAL, Status.PAUSED):
            return None  # answered meanwhile, or held by a pause until resumed
        event = expire(pending, now)
        appended = rt.store.append_if_current(thread, event)
        if appended is not None:
            break
        thread = rt.store.refresh(thread)
    rt.announce(appended.thread, event)
    if appended.thread.status is Status.RUNNING:
        rt.enqueue(thread.id)
    log.info(
        "request.expired",
        thread_id=thread.id,
        agent=thread.agent,
        event_type=event.type,
        request_id=event.request_id,
        outcome=event.outcome,
        approvers=list(event.approvers),
    )
    return event
