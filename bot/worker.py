"""The RQ job that advances a thread, and the worker process that runs it.

A job locks the thread (one worker per thread), loads its events, lets the kernel
loop run with a ``record`` that persists each event before folding it, and lets go;
if events arrived meanwhile it runs again before unlocking. Infrastructure failures
raise, and RQ retries the job with backoff.
"""

from __future__ import annotations

from functools import cache

import structlog
from rq import Worker

from agent.definition import UnknownAgent
from agent.events import Event, Failed
from agent.loop import advance
from agent.thread import Status, Thread
from bot.lock import ThreadLock
from bot.runtime import Runtime
from bot.settings import Settings

log = structlog.get_logger(__name__)


@cache
def runtime() -> Runtime:
    """The process's runtime, built once from the environment (RQ jobs take only ids)."""
    return Runtime.from_settings(Settings())


def advance_job(thread_id: str) -> str:
    """RQ entry point: advance one thread; returns its status for RQ's result."""
    thread = advance_thread(runtime(), thread_id)
    return thread.status.value if thread is not None else "busy"


def advance_thread(rt: Runtime, thread_id: str) -> Thread | None:
    """Advance ``thread_id`` until it waits, finishes or uses its step budget.

    Returns None when another worker holds the thread; that worker will see the
    events that woke this job before it lets go (see ``bot.lock``).
    """
    lock = ThreadLock(rt.connection, thread_id, ttl=rt.settings.lock_ttl)
    if not lock.acquire():
        log.info("thread.busy", thread_id=thread_id)
        return None
    with lock:
        again = True
        while again:
            thread = _run(rt, rt.store.load(thread_id))
            again = lock.release_or_continue()
    if thread.status is Status.RUNNING:
        # Step budget used up: queue behind other threads instead of hogging a worker.
        rt.enqueue(thread_id)
    return thread


def _run(rt: Runtime, thread: Thread) -> Thread:
    if thread.status is not Status.RUNNING:
        return thread
    current = thread

    def record(event: Event) -> Thread:
        nonlocal current
        current = rt.record(current, event).thread
        log.info("event.recorded", thread_id=current.id, event_type=event.type, status=current.status.value)
        return current

    try:
        spec = rt.agents.get(thread.agent)
    except UnknownAgent as exc:
        return record(Failed(reason=str(exc)))
    return advance(thread, spec, rt.model(spec), record=record, clock=rt.clock)


def deliver_job(thread_id: str, event_id: str) -> None:
    """RQ entry point: show one event through its thread's channel (retried on failure)."""
    runtime().deliver(thread_id, event_id)


def work(rt: Runtime, burst: bool = False) -> None:
    """Run an RQ worker on the Outerloop queues (``outerloop worker``)."""
    worker = Worker([rt.queue, rt.outbound_queue], connection=rt.connection)
    worker.work(burst=burst, with_scheduler=True)
