"""Pick up threads nobody is advancing: running, unlocked, with no advance job waiting, and quiet.

A worker killed mid-run leaves its thread ``running`` with a lock that expires after its
TTL. A pool's supervisor wakes the thread of a worker process that died (``bot.work.pool``), but
nobody wakes it when the whole pool vanished, so the sweeps (the scheduler's, and every
pool's) look for such threads and enqueue them again; the job then resumes the thread from
its log (a tool call left open goes to a human once its holder is known to be gone, see
``bot.state.liveness``).

A thread waiting on the model with its request queued or held by a caller is left alone too
(``bot.model.queue``): a caller answers it. A thread that asked but whose post was lost is
stalled like any other, and its job posts the request again.

A thread with an advance job queued, scheduled or started is left alone (its job id is
kept in ``queued:{id}``, see ``Runtime.enqueue``): re-queueing it would only flood the
queue when workers are slow or stopped.
"""

from __future__ import annotations

import time

import structlog

from agent.thread import Status
from bot.model import queue as model_queue
from bot.runtime import Runtime
from bot.state.store import key, lock_keys

log = structlog.get_logger(__name__)


def recover_stalled(rt: Runtime, now: float | None = None) -> list[str]:
    """Enqueue every stalled running thread; returns their ids. Reads only the running index."""
    now = time.time() if now is None else now
    running = rt.store.ids(Status.RUNNING)
    pipe = rt.connection.pipeline(transaction=False)
    for thread_id in running:
        pipe.exists(lock_keys(thread_id).lock)
        pipe.hget(key("thread", thread_id, "meta"), "updated_at")
        pipe.zscore(model_queue.ASKING, thread_id)
        pipe.hexists(model_queue.CLAIMS, thread_id)
    answers = pipe.execute()
    stalled = []
    for index, thread_id in enumerate(running):
        locked, updated_at, queued, held = answers[4 * index : 4 * index + 4]
        asking = queued is not None or held
        quiet_for = now - float(updated_at or 0)
        if locked or asking or quiet_for <= rt.settings.lock_ttl or not rt.enqueue(thread_id):
            continue
        stalled.append(thread_id)
        log.warning("thread.recovered", thread_id=thread_id, quiet_for=round(quiet_for, 1))
    return stalled
