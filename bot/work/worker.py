"""The RQ job that advances a thread, and the worker process that runs it.

A job locks the thread (one worker per thread), loads its events, lets the kernel
loop run with a ``record`` that persists each event, fenced by the lock, before folding
it, and lets go; if events arrived meanwhile it runs again before unlocking. A job never
waits on the model: it records ``model_requested``, posts the thread to the callers
(``bot.model.caller``) and lets go; the caller takes the step after the answer if that step
runs nothing, and wakes the thread for any other (``Runtime.step_here``).
Infrastructure failures raise, and RQ retries the job with backoff.

A tool call left open by another holder is not touched while that holder may be alive
(``bot.state.liveness``): the job looks again later. A worker that loses the lock stops at once;
if it was running a tool, the result is still kept (``Runtime.record_late``).
"""

from __future__ import annotations

import time
from functools import cache

import redis
import structlog
from rq import get_current_job

from agent.definition import AgentCannotRun, UnknownAgent
from agent.events import (
    AgentMessage,
    Done,
    Error,
    Event,
    Failed,
    ToolCall,
    ToolResult,
)
from agent.loop import advance
from agent.thread import Status, Thread
from bot import logs, tracing
from bot.logs import short
from bot.metrics.observe import running, steps
from bot.model import queue as model_queue
from bot.runtime import Runtime
from bot.settings import Settings
from bot.state import liveness
from bot.state.liveness import Holder
from bot.state.lock import ThreadLock
from bot.state.round_trips import Along
from bot.state.store import LockLost
from bot.work.pool import Pool
from bot.work.warm_up import rehearse

log = structlog.get_logger(__name__)
SAID = 200
"""Characters of what the agent said that a log line shows."""

TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
APPEND_RETRY_CAP = 1.0
"""Longest wait between two tries of an append while Redis is away."""


@cache
def runtime() -> Runtime:
    """The process's runtime, built once from the environment (RQ jobs take only ids)."""
    return Runtime.from_settings(Settings())


def advance_job(thread_id: str) -> str:
    """RQ entry point: advance one thread; returns its status for RQ's result."""
    rt = runtime()
    job = get_current_job()
    with running("advance"):
        thread = advance_thread(rt, thread_id, rt.taking(thread_id, job.id) if job is not None else None)
    return thread.status.value if thread is not None else "busy"


def advance_thread(rt: Runtime, thread_id: str, along: Along | None = None) -> Thread | None:
    """Advance ``thread_id`` until it waits, finishes or uses its step budget; ``along``'s
    writes ride along the first command (the job's own bookkeeping).

    Returns None when another live worker holds the thread (it will see the events that
    woke this job before it lets go, see ``bot.state.lock``) or when this job lost the lock.
    """
    with logs.working_on(thread_id=thread_id):
        return _advance(rt, thread_id, along)


def _advance(rt: Runtime, thread_id: str, along: Along | None) -> Thread | None:
    me = Holder.here()
    lock = ThreadLock(rt.connection, thread_id, me, ttl=rt.settings.lock_ttl)
    if not lock.acquire(along) and not _take_from_the_gone(rt, lock, me):
        log.info("thread.busy", thread_id=thread_id)
        return None
    try:
        with lock:
            while True:
                thread = rt.store.load(thread_id)
                logs.about(agent=thread.agent)
                if _running_elsewhere(rt, thread, me):
                    # The recovery sweeps look again every sweep interval while it stays so.
                    return thread
                thread = _run(rt, thread, lock)
                # A thread waiting on the model is posted to the callers as the lock is let go,
                # in the same round trip; posting a request already posted finds a lost post.
                posting = model_queue.posting(thread_id) if thread.deciding is not None else None
                if not lock.release_or_continue(posting):
                    break
    except LockLost:
        log.warning("thread.lock_lost", thread_id=thread_id)
        return None
    if thread.runnable and thread.open_call is None:
        # Step budget used up: queue behind other threads instead of hogging a worker.
        rt.enqueue(thread_id)
    return thread


def _take_from_the_gone(rt: Runtime, lock: ThreadLock, me: Holder) -> bool:
    """Take the lock if its holder is known to be gone (a killed worker whose thread was woken again)."""
    held_by = lock.holder()
    if held_by is None or not liveness.is_gone(rt.connection, held_by, me):
        return False
    taken = lock.take_over(held_by)
    if taken:
        log.warning("thread.lock_taken_over", thread_id=lock.thread_id, from_holder=held_by)
    return taken


def _running_elsewhere(rt: Runtime, thread: Thread, me: Holder) -> bool:
    """Whether the thread's open call is still being run by a holder that may be alive."""
    call = thread.open_call
    if thread.status is not Status.RUNNING or call is None or call.holder is None:
        return False
    if liveness.is_gone(rt.connection, call.holder, me):
        return False
    log.info("thread.call_running_elsewhere", thread_id=thread.id, tool=call.tool, holder=call.holder)
    return True


def _run(rt: Runtime, thread: Thread, lock: ThreadLock) -> Thread:
    if not thread.runnable:  # waiting on a person, or on the model (a caller answers), or ended
        return thread
    current = thread

    def record(event: Event) -> Thread:
        nonlocal current
        if isinstance(event, ToolCall):
            event = event.model_copy(update={"holder": lock.value})
        try:
            current = _append(rt, current, event, lock)
        except LockLost:
            if isinstance(event, ToolResult | Error) and event.call_id is not None:
                rt.record_late(thread.id, event)
            raise
        said = {"text": short(event.text, SAID)} if isinstance(event, AgentMessage) else {}
        if isinstance(event, Done):
            said = {"text": short(event.message, SAID)}
        log.info(
            "event.recorded", thread_id=current.id, event_type=event.type, status=current.status.value, **said
        )
        return current

    try:
        spec = rt.runnable_agent(thread.agent)
    except (UnknownAgent, AgentCannotRun) as exc:
        # Retrying cannot help until a person fixes the deployment: fail once, saying what to fix.
        log.warning("thread.cannot_run", thread_id=thread.id, reason=str(exc))
        return record(Failed(reason=str(exc)))
    with tracing.run(thread) as observe, steps(thread.agent, lock.check) as check:
        return advance(thread, spec, None, record=observe(record), clock=rt.clock, check=check)


def _append(rt: Runtime, thread: Thread, event: Event, lock: ThreadLock) -> Thread:
    """Record ``event`` fenced by ``lock``, riding out Redis outages.

    While Redis is away the append is tried again with backoff (a tool that just ran must
    not be lost to a blip); when it answers, an append refused because the lock expired
    meanwhile takes the lock back if nobody else took it, and tries once more."""
    delay = 0.05
    while True:
        try:
            try:
                return rt.record(thread, event, fence=lock.value).thread
            except LockLost:
                if not lock.reclaim():
                    raise
                return rt.record(thread, event, fence=lock.value).thread
        except TRANSIENT as exc:
            log.warning(
                "event.append_retry", thread_id=thread.id, event_type=event.type, error=type(exc).__name__
            )
            time.sleep(delay)
            delay = min(delay * 2, APPEND_RETRY_CAP)


def deliver_job(thread_id: str, event_id: str) -> None:
    """RQ entry point: show one event through its thread's channel (retried on failure)."""
    with running("deliver"):
        runtime().deliver(thread_id, event_id)


def work(rt: Runtime, processes: int = 2, burst: bool = False) -> None:
    """Run ``processes`` workers on the Outerloop queues under one supervisor (``outerloop worker``).

    A job that runs a long tool occupies its process for the tool's whole run; the others
    go on (``bot.work.pool``)."""
    prepare(rt)
    Pool(rt, processes, burst=burst).run()


def prepare(rt: Runtime) -> None:
    """Render one model request for each agent, once, before the pool forks (``bot.work.warm_up``).
    Workers build no model: callers ask it."""
    rehearse(rt.agents, "worker")
    log.info("worker.prepared", agents=[spec.name for spec in rt.agents])
