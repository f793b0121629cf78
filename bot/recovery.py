"""Pick up threads whose worker died: running, unlocked, and quiet for longer than a lock lives.

A worker killed mid-run leaves its thread ``running`` with a lock that expires after
its TTL. RQ retries a job whose work horse died, but not one whose whole worker
vanished, so the scheduler sweeps for such threads and enqueues them again; the
kernel then resumes them from the log (an interrupted tool call goes to a human).
"""

from __future__ import annotations

import time

import structlog

from agent.thread import Status
from bot.runtime import Runtime
from bot.store import key

log = structlog.get_logger(__name__)


def recover_stalled(rt: Runtime, now: float | None = None) -> list[str]:
    """Enqueue every stalled running thread; returns their ids."""
    now = time.time() if now is None else now
    stalled = []
    for summary in rt.store.summaries(Status.RUNNING):
        locked = rt.connection.exists(key("lock", summary.id))
        if not locked and now - summary.updated_at > rt.settings.lock_ttl:
            rt.enqueue(summary.id)
            stalled.append(summary.id)
            log.warning(
                "thread.recovered", thread_id=summary.id, quiet_for=round(now - summary.updated_at, 1)
            )
    return stalled
