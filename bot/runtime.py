"""The runtime: launch, respond to, pause, resume, cancel and fork threads (factor 6).

Every control action is one call that appends an event (persisted first) and then
enqueues ``advance`` for the thread; the web API, the CLI and the channels all use
these calls, so they behave the same whichever door a request comes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis
import structlog
from rq import Queue, Retry

from agent.definition import AgentSpec, Registry
from agent.events import (
    Cancelled,
    Event,
    HumanResponse,
    Origin,
    Paused,
    Resumed,
    Trigger,
    new_id,
)
from agent.model import Model
from agent.thread import FINAL, Status, Thread, fork, may_answer
from bot.agents import load_registry
from bot.models import model_for
from bot.settings import Settings
from bot.store import Appended, Store

log = structlog.get_logger(__name__)

QUEUE = "outerloop"
ADVANCE_RETRY = Retry(max=5, interval=[1, 2, 5, 10, 30])
"""Retries for infrastructure failures (Redis hiccups, a killed work horse)."""


class Conflict(ValueError):
    """The action does not fit the thread's current state (HTTP 409)."""


class NotAllowed(PermissionError):
    """The person may not answer this request (HTTP 403)."""


@dataclass
class Runtime:
    settings: Settings
    connection: redis.Redis
    agents: Registry
    models: dict[str, Model] = field(default_factory=dict)
    """Models by agent name; filled from settings on first use unless given."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings, redis.Redis.from_url(settings.require_redis_url()), load_registry(settings))

    @cached_property
    def store(self) -> Store:
        return Store(self.connection)

    @cached_property
    def queue(self) -> Queue:
        return Queue(QUEUE, connection=self.connection)

    def model(self, agent: AgentSpec) -> Model:
        if agent.name not in self.models:
            self.models[agent.name] = model_for(agent, self.settings)
        return self.models[agent.name]

    def enqueue(self, thread_id: str) -> None:
        self.queue.enqueue(
            "bot.worker.advance_job",
            thread_id,
            retry=ADVANCE_RETRY,
            job_timeout=self.settings.job_timeout,
            result_ttl=60,
            failure_ttl=7 * 24 * 3600,
            description=f"advance thread {thread_id}",
        )

    def submit(self, thread: Thread | str, event: Event) -> Appended:
        """Persist an event, then wake the thread (invariant 3: persisted before acknowledged)."""
        appended = (
            self.store.submit(thread, event) if isinstance(thread, str) else self.store.append(thread, event)
        )
        if appended.applied:
            self.enqueue(appended.thread.id)
        log.info(
            "event.submitted",
            thread_id=appended.thread.id,
            event_type=event.type,
            duplicate=not appended.applied,
        )
        return appended

    def launch(self, agent: str, text: str, origin: Origin | None = None, key: str | None = None) -> Appended:
        """Start a new thread for ``agent`` with ``text``; a repeated ``key`` starts nothing."""
        self.agents.get(agent)
        trigger = Trigger(text=text, origin=origin or Origin(channel="api", sender="api"), key=key)
        appended = self.store.create(new_id(), agent, trigger)
        if appended.applied:
            self.enqueue(appended.thread.id)
            log.info("thread.launched", thread_id=appended.thread.id, agent=agent)
        return appended

    def respond(
        self,
        thread_id: str,
        request_id: str,
        responder: str,
        *,
        approved: bool | None = None,
        comment: str | None = None,
        answer: str | None = None,
        key: str | None = None,
    ) -> Appended:
        """Answer a pending human request, after checking it is pending and who may answer."""
        thread = self.store.load(thread_id)
        request = thread.request(request_id)
        if request is None:
            raise LookupError(f"thread {thread_id} has no request {request_id!r}")
        settled = thread.response_to(request_id)
        if settled is not None:
            raise Conflict(f"request {request_id} was already answered by {settled.responder}")
        if thread.pending is None or thread.pending.request_id != request_id:
            raise Conflict(f"request {request_id} is no longer pending")
        if not may_answer(request, responder):
            raise NotAllowed(
                f"{responder} may not answer this request; approvers: {', '.join(request.approvers)}"
            )
        if request.kind == "approval" and approved is None:
            raise ValueError("an approval request needs approved: true or false")
        if request.kind == "question" and not (answer or comment):
            raise ValueError("a question needs an answer")
        response = HumanResponse(
            request_id=request_id,
            responder=responder,
            approved=approved if request.kind == "approval" else None,
            comment=comment,
            answer=answer,
            key=key,
        )
        return self.submit(thread, response)

    def pause(self, thread_id: str, by: str, reason: str | None = None) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status in (*FINAL, Status.DONE, Status.PAUSED):
            raise Conflict(
                f"thread {thread_id} is {thread.status}; only running or waiting threads can be paused"
            )
        return self.store.append(thread, Paused(by=by, reason=reason))

    def resume(self, thread_id: str, by: str) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status is not Status.PAUSED:
            raise Conflict(f"thread {thread_id} is {thread.status}, not paused")
        return self.submit(thread, Resumed(by=by))

    def cancel(self, thread_id: str, by: str, reason: str | None = None) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status in FINAL:
            raise Conflict(f"thread {thread_id} is already {thread.status}")
        return self.store.append(thread, Cancelled(by=by, reason=reason))

    def fork(self, thread_id: str, at: int) -> Appended:
        """A new thread with the first ``at`` events of ``thread_id``, advanced from there."""
        source = self.store.load(thread_id)
        copy = fork(source, at=at, new_id=new_id())
        if not copy.events:
            raise ValueError("cannot fork at 0: a thread starts with at least one event")
        # Delivery keys belong to the original thread; copies must not be taken for duplicates.
        events = [event.model_copy(update={"key": None}) for event in copy.events]
        thread = self.store.create(copy.id, copy.agent, events[0]).thread
        for event in events[1:]:
            thread = self.store.append(thread, event).thread
        self.enqueue(thread.id)
        log.info("thread.forked", thread_id=thread.id, source=thread_id, at=at)
        return Appended(thread=thread, applied=True)
