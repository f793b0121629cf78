"""``outerloop caller``: answers the threads' model requests, hundreds in flight on one event loop.

A worker never waits on a model: it records ``model_requested`` and lets go
(``agent.asking``), posting the thread to the queue of ``bot.model.queue``. A caller claims
requests, renders each from the thread's log with the agent's own code, asks the model
(``AsyncAnthropic``; a scripted model answers on the same path), records the answer as
``model_decided`` or a model ``error`` with a compare-and-set on the log, so a request is
answered once. It takes the step after the answer itself when that step runs nothing (finish,
ask a person, ask approval, ask the model again: ``Runtime.step_here``) and wakes a worker for
any other (a tool to run).

The account is protected by a concurrency limit per model and per agent (in this process)
and a rate limit per API key that all callers share (``bot.model.rate_limit``). A 429 or 529 waits
as long as the API says (``retry-after``), and holds every caller for that long; it counts
as a model error only when the retries run out.

The caller vouches for itself like a worker (``bot.state.liveness``); a claim names the caller,
and another caller takes the request up again only once that caller is known to be gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
import structlog

from agent.asking import agent_version, decision, model_error, model_request
from agent.definition import AgentSpec, UnknownAgent
from agent.events import Error, ModelDecided, ModelRequested
from agent.model import AsyncModel, Immediate, ModelError, ModelRequest, ModelUnavailable
from agent.thread import FINAL, Thread
from bot import logs, tracing
from bot.model import queue as model_queue
from bot.model.choice import NoModel, answering_model, model_for
from bot.model.rate_limit import RateLimit, account
from bot.runtime import Runtime
from bot.state import liveness
from bot.state.liveness import Holder
from bot.state.round_trips import together
from bot.work.warm_up import rehearse

log = structlog.get_logger(__name__)

Answer = ModelDecided | Error
IDLE_POLL = 0.05
"""Seconds between looks at the queue while it is empty."""
T = TypeVar("T")
TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
RETRY_CAP = 1.0
"""Longest wait between two tries to reach Redis."""
BACKOFF_CAP = 60.0
"""Longest wait before a retry, whatever the API asks."""


@dataclass(frozen=True)
class Asked:
    """A claimed thread's model request, read from its log and rendered, ready to send."""

    thread: Thread
    spec: AgentSpec
    model: AsyncModel
    requested: ModelRequested
    request: ModelRequest


class Caller:
    """One caller process's state: its holder, models, limits and the requests it holds."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.me = Holder.here()
        self.holder = str(self.me)
        self.models: dict[str, AsyncModel] = {}
        settings = rt.settings
        self.by_model: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.model_concurrency)
        )
        self.by_agent: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.agent_concurrency)
        )
        self.rate = RateLimit(rt.connection, account(settings.anthropic_api_key), settings.model_rpm or 0)
        self.tasks: set[asyncio.Task[None]] = set()
        self.held: set[str] = set()
        """The threads whose requests this caller claimed and has not answered yet."""
        self.stopping = asyncio.Event()
        self.beat = max(1.0, settings.lock_ttl / 3)

    @property
    def liveness_ttl(self) -> float:
        """How long one vouch lasts: a few missed beats, so one slow beat is no death notice."""
        return 3 * self.beat + 5

    def vouch(self) -> None:
        liveness.vouch(self.rt.connection, self.me.worker, self.me.pid, self.liveness_ttl)

    async def run(self) -> None:
        """Claim and answer requests until SIGTERM or SIGINT (``outerloop caller``); then give back
        the requests not answered yet, so other callers take them up at once."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        await asyncio.to_thread(self.prepare)
        self.vouch()
        beating = asyncio.create_task(self._heartbeat())
        log.info("caller.started", holder=self.holder, capacity=self.rt.settings.caller_capacity)
        last_sweep = 0.0
        try:
            while not self.stopping.is_set():
                if time.monotonic() - last_sweep > self.rt.settings.sweep_interval:
                    last_sweep = time.monotonic()
                    self._requeue_gone()
                if not await self._riding_out("claim", self.claim, in_thread=False):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), IDLE_POLL)
        finally:
            beating.cancel()
            await self._give_back()

    def prepare(self) -> None:
        """Build each agent's model (a second for the SDK alone) and rehearse its request
        before taking work, so that the first requests do not wait for it (``bot.work.warm_up``)."""
        for name in rehearse(self.rt.agents, "caller"):
            with contextlib.suppress(NoModel):  # each of its threads fails, saying why
                self._model(self.rt.agents.get(name))

    async def _give_back(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for thread_id in list(self.held):
            model_queue.release(self.rt.connection, thread_id, self.holder, again=True)
        log.info("caller.stopped", given_back=len(self.held))

    def claim(self) -> int:
        """Claim as many waiting requests as there is room for and start answering them."""
        room = self.rt.settings.caller_capacity - len(self.tasks)
        claimed = model_queue.claim(self.rt.connection, self.holder, room)
        self.held.update(claimed)
        for thread_id in claimed:
            task = asyncio.create_task(self.answer(thread_id))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(claimed)

    async def answer_waiting(self) -> int:
        """Answer every request waiting now, and return how many (for in-process runs)."""
        self.vouch()
        count = self.claim()
        if self.tasks:
            await asyncio.gather(*self.tasks)
        return count

    async def answer(self, thread_id: str) -> None:
        """Answer the request of one claimed thread, record it once, wake the thread."""
        with logs.working_on(thread_id=thread_id):  # this task's lines only: each answer is a task
            try:
                await self._answer(thread_id)
            except Exception:  # a bug, or a thread that cannot be read: give it back for another try
                log.exception("caller.answer_failed", thread_id=thread_id)
                await asyncio.sleep(1)
                releasing = model_queue.releasing(thread_id, self.holder, again=True)
                await self._riding_out("release", lambda: together(self.rt.connection, None, releasing))
            self.held.discard(thread_id)

    async def _answer(self, thread_id: str) -> None:
        """Two trips to a worker thread around the model call: one reads the thread and renders
        its request, the other records the answer, takes the step after it and lets go."""
        asked = await self._riding_out("load", lambda: self._asked(thread_id))
        if asked is None:
            return
        logs.about(agent=asked.spec.name)
        with tracing.chat(thread_id, asked.spec, self.rt.settings) as answered:
            answer = await self._ask(asked, thread_id)
            answered(answer)
        # The answer is paid for: ride out a Redis outage rather than ask the model again.
        await self._riding_out("record", lambda: self._settle(asked.thread, answer))

    def _asked(self, thread_id: str) -> Asked | None:
        """The thread's request, rendered; None if there is nothing to ask (the claim dropped,
        or the model error recorded when the agent or its model is gone)."""
        thread = self.rt.store.load(thread_id)
        logs.about(agent=thread.agent)
        requested = thread.deciding
        if requested is None or thread.status in FINAL:
            log.info("caller.nothing_to_answer", thread_id=thread_id)
            self._settle(thread, None)
            return None
        try:
            spec = self.rt.agents.get(thread.agent)
            model = self._model(spec)
        except (UnknownAgent, NoModel) as exc:
            self._settle(thread, model_error(requested, ModelError(str(exc))))
            return None
        if requested.version != (version := agent_version(spec)):
            log.warning("caller.agent_changed", thread_id=thread_id, asked=requested.version, now=version)
        return Asked(thread, spec, model, requested, model_request(thread, spec, requested))

    def _settle(self, thread: Thread, answer: Answer | None) -> None:
        """Record ``answer`` once, take the step after it here if that runs nothing (finish, ask
        a person, ask the model again) and let go of the claim: waking a worker for any other
        step (a tool to run), or queueing the request again if the model is asked again. Safe
        to repeat after a Redis outage: the answer and the step are each recorded once."""
        decided = None if answer is None else self._record(thread, answer)
        stepped = None if decided is None else self.rt.step_here(decided)
        again = stepped is not None and stepped.deciding is not None  # after a model error
        releasing = model_queue.releasing(thread.id, self.holder, again)
        if stepped is not None and stepped.runnable:  # the claim is dropped as the thread is woken
            self.rt.enqueue(thread.id, releasing)
        else:
            together(self.rt.connection, None, releasing)

    async def _riding_out(self, what: str, call: Callable[[], T], in_thread: bool = True) -> T:
        """``call`` (in a worker thread unless it is quick), tried again while Redis is away."""
        delay = 0.05
        while True:
            try:
                return await asyncio.to_thread(call) if in_thread else call()
            except TRANSIENT as exc:
                log.warning("caller.redis_retry", what=what, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)

    async def _ask(self, asked: Asked, thread_id: str) -> Answer:
        """Ask within the limits; retry what the API says to retry, as long as it says to wait.

        The call's latency runs from when it may be sent (a concurrency slot taken) to its
        answer: the retries and the waits the API asked for are part of it."""
        model, spec, requested, request = asked.model, asked.spec, asked.requested, asked.request
        retries = self.rt.settings.model_retries
        # The agent's slot first: a call waiting for its agent holds no slot of its model, so
        # the model's other agents are not kept waiting behind it.
        async with self.by_agent[spec.name], self.by_model[answering_model(spec, self.rt.settings)]:
            started = time.monotonic()
            for attempt in range(retries + 1):
                await self._wait_for_rate()
                try:
                    call = await model.decide(request)
                except ModelUnavailable as exc:
                    if not exc.retryable or attempt == retries:
                        return model_error(requested, exc)
                    pause = self._backoff(exc, attempt)
                    log.warning("caller.retry", thread_id=thread_id, status=exc.status, wait=round(pause, 3))
                    await asyncio.sleep(pause)
                    continue
                except ModelError as exc:
                    return model_error(requested, exc)
                return decision(requested, call, time.monotonic() - started)
        raise AssertionError("unreachable: the last attempt returns")

    def _backoff(self, exc: ModelUnavailable, attempt: int) -> float:
        """How long to wait before the next try: what the API said (and then every caller on the
        key waits too), else an exponential backoff."""
        if exc.retry_after is not None:
            pause = min(exc.retry_after, BACKOFF_CAP)
            if exc.status in (429, 529):
                with contextlib.suppress(redis.RedisError):  # this caller waits anyway
                    self.rate.hold(pause)
            return pause
        return min(0.5 * 2.0**attempt, BACKOFF_CAP)

    async def _wait_for_rate(self) -> None:
        while (wait := await self._riding_out("rate", self.rate.take, in_thread=False)) > 0:
            await asyncio.sleep(wait)

    def _record(self, thread: Thread, answer: Answer) -> Thread | None:
        """Append ``answer`` only while the thread still waits on its request (compare-and-set):
        a request answered by another caller, or asked again after a fork, keeps its answer.
        Returns the thread with the answer, None if it was dropped."""
        while True:
            deciding = thread.deciding
            if deciding is None or deciding.request_id != answer.request_id or thread.status in FINAL:
                log.info("caller.answer_dropped", thread_id=thread.id, request_id=answer.request_id)
                return None
            appended = self.rt.record_if_current(thread, answer)
            if appended is not None:
                log.info("event.recorded", thread_id=thread.id, event_type=answer.type)
                return appended.thread
            known = len(thread.events)
            thread = self.rt.store.refresh(thread)
            if any(event.id == answer.id for event in thread.events[known:]):
                return thread  # an earlier try was written, but its reply lost with the connection

    def _model(self, spec: AgentSpec) -> AsyncModel:
        if spec.name not in self.models:
            given = self.rt.models.get(spec.name)
            self.models[spec.name] = (
                Immediate(given) if given is not None else model_for(spec, self.rt.settings)
            )
        return self.models[spec.name]

    def _requeue_gone(self) -> None:
        try:
            requeued = model_queue.requeue_gone(self.rt.connection, self.me)
        except Exception:  # a sweep that fails is tried again next time
            log.exception("caller.sweep_failed")
            return
        for thread_id in requeued:
            log.warning("caller.request_taken_up", thread_id=thread_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                self.vouch()
            except redis.RedisError as exc:  # Redis away: the next beat tries again
                log.warning("caller.vouch_failed", error=type(exc).__name__)


def call(rt: Runtime, burst: bool = False) -> None:
    """Run a caller until stopped (``outerloop caller``); with ``burst``, answer the requests
    waiting now and exit."""
    caller = Caller(rt)
    asyncio.run(caller.answer_waiting() if burst else caller.run())
