"""The RQ job that advances a thread, and the worker process that runs it.

A job locks the thread (one worker per thread), loads its events, lets the kernel
loop run with a ``record`` that persists each event, fenced by the lock, before folding
it, and lets go; if events arrived meanwhile it runs again before unlocking.
Infrastructure failures raise, and RQ retries the job with backoff.

A tool call left open by another holder is not touched while that holder may be alive
(``bot.liveness``): the job looks again later. A worker that loses the lock stops at once;
if it was running a tool, the result is still kept (``Runtime.record_late``).
"""

from __future__ import annotations

import os
import time
from functools import cache

import redis
import structlog
from rq import Worker, get_current_job
from rq.job import Job
from rq.queue import Queue

from agent.definition import AgentCannotRun, UnknownAgent
from agent.events import AgentMessage, Done, Error, Event, Failed, Origin, ToolCall, ToolResult, Trigger
from agent.loop import advance, next_step
from agent.model import ModelCall, ModelError, ModelRequest
from agent.thread import Status, Thread, reduce
from bot import liveness
from bot.liveness import Holder
from bot.lock import ThreadLock
from bot.logs import short
from bot.runtime import Runtime
from bot.settings import Settings
from bot.store import LockLost
from bot.sweeps import sweep_once

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
    if job is not None:
        rt.taken(thread_id, job.id)
    thread = advance_thread(rt, thread_id)
    return thread.status.value if thread is not None else "busy"


def advance_thread(rt: Runtime, thread_id: str) -> Thread | None:
    """Advance ``thread_id`` until it waits, finishes or uses its step budget.

    Returns None when another live worker holds the thread (it will see the events that
    woke this job before it lets go, see ``bot.lock``) or when this job lost the lock.
    """
    me = Holder.here()
    lock = ThreadLock(rt.connection, thread_id, me, ttl=rt.settings.lock_ttl)
    if not lock.acquire() and not _take_from_the_gone(rt, lock, me):
        log.info("thread.busy", thread_id=thread_id)
        return None
    try:
        with lock:
            while True:
                thread = rt.store.load(thread_id)
                if _running_elsewhere(rt, thread, me):
                    # The recovery sweeps look again every sweep interval while it stays so.
                    return thread
                thread = _run(rt, thread, lock)
                if not lock.release_or_continue():
                    break
    except LockLost:
        log.warning("thread.lock_lost", thread_id=thread_id)
        return None
    if thread.status is Status.RUNNING and thread.open_call is None:
        # Step budget used up: queue behind other threads instead of hogging a worker.
        rt.enqueue(thread_id)
    return thread


def _take_from_the_gone(rt: Runtime, lock: ThreadLock, me: Holder) -> bool:
    """Take the lock if its holder is known to be gone (a killed work horse whose job RQ retried)."""
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
    if thread.status is not Status.RUNNING:
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
        spec = rt.agents.get(thread.agent)
        model = rt.model(spec)
        spec.ensure_runnable()
    except (UnknownAgent, AgentCannotRun) as exc:
        # Retrying cannot help until a person fixes the deployment: fail once, saying what to fix.
        log.warning("thread.cannot_run", thread_id=thread.id, reason=str(exc))
        return record(Failed(reason=str(exc)))
    return advance(thread, spec, model, record=record, clock=rt.clock, check=lock.check)


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
    runtime().deliver(thread_id, event_id)


def work(rt: Runtime, burst: bool = False) -> None:
    """Run an RQ worker on the Outerloop queues (``outerloop worker``).

    RQ's worker quits on an error it does not handle, e.g. Redis going away just as a job
    ends; the loop starts a new one after a pause instead, as a supervisor would."""
    prepare(rt)
    while True:
        worker = OuterloopWorker(rt, [rt.queue, rt.outbound_queue], connection=rt.connection)
        try:
            worker.work(burst=burst, with_scheduler=True)
        except TRANSIENT as exc:  # Redis away before the loop even started
            log.warning("worker.redis_unavailable", error=type(exc).__name__)
        if burst or worker.stopping:
            return
        log.warning("worker.restarting", after=rt.settings.lock_ttl)
        time.sleep(rt.settings.lock_ttl)


class OuterloopWorker(Worker):
    """RQ's forking worker, vouching for its work horse and sweeping now and then.

    RQ calls ``heartbeat`` while idle (every few seconds, as ``worker_ttl`` is short) and
    ``maintain_heartbeats`` every ``job_monitoring_interval`` while a horse runs: the two
    places a worker's main loop is sure to pass, whatever its horse does."""

    def __init__(self, rt: Runtime, queues: list[Queue], connection: redis.Redis) -> None:
        self.rt = rt
        self.beat = max(1, int(rt.settings.lock_ttl / 3))
        super().__init__(queues, connection=connection, worker_ttl=20, job_monitoring_interval=self.beat)
        self.last_sweep = 0.0
        self.stopping = False
        """Asked to stop (SIGTERM, SIGINT): ``work`` must not start it again."""

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    @property
    def liveness_ttl(self) -> float:
        """How long one vouch lasts: a few missed beats, so one slow beat is no death notice."""
        return 3 * self.beat + 5

    def heartbeat(self, timeout: int | None = None, pipeline: redis.client.Pipeline | None = None) -> None:
        super().heartbeat(timeout, pipeline)
        self._vouch()
        self._maybe_sweep()

    def maintain_heartbeats(self, job: Job, execution: object) -> None:
        try:
            super().maintain_heartbeats(job, execution)  # type: ignore[arg-type]
        except TRANSIENT as exc:
            # RQ would quit and orphan the horse; the horse rides out the outage, so do we.
            log.warning("worker.heartbeat_failed", error=type(exc).__name__)
        self._vouch()
        self._maybe_sweep()

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        super().fork_work_horse(job, queue)
        self._vouch()  # at once: the horse must not look gone before the first beat

    def _vouch(self) -> None:
        try:
            liveness.vouch(self.connection, self.name, self.horse_pid or os.getpid(), self.liveness_ttl)
        except TRANSIENT as exc:
            log.warning("worker.vouch_failed", error=type(exc).__name__)

    def _maybe_sweep(self) -> None:
        """Recover stalled threads and owed deliveries without ``outerloop scheduler`` too."""
        if self.is_horse or time.monotonic() - self.last_sweep < self.rt.settings.sweep_interval:
            return
        self.last_sweep = time.monotonic()
        sweep_once(self.rt, time.time())


def prepare(rt: Runtime) -> None:
    """Build each agent's model and render one request for it, once, before the worker forks.

    RQ's worker forks a work horse for every job, and whatever a horse builds on first use
    (the model, the prompt templates, pydantic's JSON-schema machinery, the bound logger)
    is lost when it exits; done here, every horse inherits it instead of rebuilding it for
    each job (``python -m bench`` shows the difference).
    """
    for spec in rt.agents:
        rehearsal = reduce(
            Thread(id="rehearsal", agent=spec.name),
            Trigger(text="rehearsal", origin=Origin(channel="worker", sender="worker")),
        )
        try:
            rt.model(spec)
            next_step(rehearsal, spec, _Declining())
        except AgentCannotRun as exc:
            # Not fatal at start-up: each of the agent's threads fails, saying why (``_run``).
            log.warning("worker.agent_cannot_run", agent=spec.name, reason=str(exc))
    log.info("worker.prepared", agents=[spec.name for spec in rt.agents])


class _Declining:
    """A model that gives no answer, so that ``next_step`` renders a request and stops there."""

    def decide(self, request: ModelRequest) -> ModelCall:
        raise ModelError("rehearsal: no answer wanted")
