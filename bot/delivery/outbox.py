"""Outbound delivery: show the events people care about through the channel a thread came from.

When an event is appended, the runtime asks whether the thread's channel shows that
kind of event; if so a delivery job goes onto its own RQ queue, so a Slack outage or
rate limit is retried with backoff without ever holding up a thread. Delivery is
at least once: a worker that dies after posting but before the job finishes may
post again on retry.
"""

from __future__ import annotations

import structlog
from rq import Retry

from agent.events import Event
from agent.thread import Thread
from channels.gateway import Outbound

log = structlog.get_logger(__name__)

QUEUE = "outerloop-outbound"
DELIVERY_RETRY = Retry(max=8, interval=[1, 2, 5, 10, 30, 60, 120, 300])


def channel_of(thread: Thread) -> str | None:
    """The channel that started the thread: where its replies and requests go."""
    trigger = thread.trigger
    return trigger.origin.channel if trigger is not None else None


def wants(outbound: dict[str, Outbound], thread: Thread, event: Event) -> bool:
    channel = channel_of(thread)
    return channel in outbound and event.type in outbound[channel].interests


def find_event(thread: Thread, event_id: str) -> Event:
    for event in thread.events:
        if event.id == event_id:
            return event
    raise LookupError(f"thread {thread.id} has no event {event_id}")
