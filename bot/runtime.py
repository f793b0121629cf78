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
    Clock,
    Event,
    HumanResponse,
    Origin,
    Paused,
    Resumed,
    Trigger,
    new_id,
    utcnow,
)
from agent.model import Model
from agent.thread import FINAL, Status, Thread, fork, may_answer
from bot import outbox
from bot.agents import load_registry
from bot.models import model_for
from bot.outbound import outbound_channels
from bot.settings import Settings
from bot.store import Appended, Store, ThreadExists, ThreadNotFound
from channels.gateway import ROUTE, Conflict, NotAllowed, Outbound

log = structlog.get_logger(__name__)

QUEUE = "outerloop"
ADVANCE_RETRY = Retry(max=5, interval=[1, 2, 5, 10, 30])
"""Retries for infrastructure failures (Redis hiccups, a killed work horse)."""


@dataclass
class Runtime:
    settings: Settings
    connection: redis.Redis
    agents: Registry
    outbound: dict[str, Outbound] = field(default_factory=dict)
    """Each channel's outbound side, by the channel name in a trigger's origin."""
    models: dict[str, Model] = field(default_factory=dict)
    """Models by agent name; filled from settings on first use unless given."""
    clock: Clock = field(default=utcnow)
    """"Now" for the deadlines of human requests; tests pass a clock they control."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        connection = redis.Redis.from_url(settings.require_redis_url())
        return cls(settings, connection, load_registry(settings), outbound_channels(settings))

    @cached_property
    def store(self) -> Store:
        return Store(self.connection)

    @cached_property
    def queue(self) -> Queue:
        return Queue(QUEUE, connection=self.connection)

    @cached_property
    def outbound_queue(self) -> Queue:
        return Queue(outbox.QUEUE, connection=self.connection)

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

    def record(self, thread: Thread, event: Event) -> Appended:
        """Append an event and hand it to the thread's channel if people should see it."""
        appended = self.store.append(thread, event)
        if appended.applied:
            self.announce(appended.thread, event)
        return appended

    def announce(self, thread: Thread, event: Event) -> None:
        """Queue the delivery of a stored event, if the thread's channel shows its kind."""
        if outbox.wants(self.outbound, thread, event):
            self.outbound_queue.enqueue(
                "bot.worker.deliver_job",
                thread.id,
                event.id,
                retry=outbox.DELIVERY_RETRY,
                result_ttl=60,
                failure_ttl=7 * 24 * 3600,
                description=f"deliver {event.type} of thread {thread.id}",
            )

    def deliver(self, thread_id: str, event_id: str) -> None:
        """Show one event through the thread's channel and keep the channel's receipt."""
        thread = self.store.load(thread_id)
        event = outbox.find_event(thread, event_id)
        channel = outbox.channel_of(thread)
        if channel is None or channel not in self.outbound:
            log.warning("delivery.no_channel", thread_id=thread_id, channel=channel)
            return
        receipt = self.outbound[channel].deliver(thread, event, self.store)
        if receipt:
            self.store.keep_receipt(event_id, receipt)
            if ROUTE in receipt:  # replies to what was just sent continue this thread
                self.store.bind_route(receipt[ROUTE], thread_id)
        log.info("delivery.done", thread_id=thread_id, event_type=event.type, channel=channel)

    def submit(self, thread: Thread | str, event: Event) -> Appended:
        """Persist an event, then wake the thread (invariant 3: persisted before acknowledged)."""
        appended = self.record(self.store.load(thread) if isinstance(thread, str) else thread, event)
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
        return self._start(new_id(), agent, trigger)

    def _start(self, thread_id: str, agent: str, trigger: Trigger, **context: str) -> Appended:
        """Create a thread with its trigger, show the trigger to its channel, and wake it."""
        appended = self.store.create(thread_id, agent, trigger)
        if appended.applied:
            self.announce(appended.thread, trigger)
            self.enqueue(thread_id)
            log.info("thread.launched", thread_id=thread_id, agent=agent, **context)
        return appended

    def converse(self, route: str, agent: str, trigger: Trigger) -> Appended:
        """Add ``trigger`` to the conversation's thread, starting one for ``agent`` if needed."""
        self.agents.get(agent)
        # Bind the route first: concurrent first messages then agree on one thread id.
        thread_id = self.store.bind_route(route, new_id())
        try:
            return self.submit(thread_id, trigger)
        except ThreadNotFound:
            pass
        try:
            return self._start(thread_id, agent, trigger, route=route)
        except ThreadExists:  # another delivery created it between our two calls
            return self.submit(thread_id, trigger)

    def thread_of(self, route: str) -> str | None:
        return self.store.route(route)

    def load(self, thread_id: str) -> Thread:
        return self.store.load(thread_id)

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
        via: str | None = None,
        credential: str | None = None,
    ) -> Appended:
        """Answer a pending human request, after checking it is pending and who may answer."""
        thread = self.store.load(thread_id)
        request = thread.request(request_id)
        if request is None:
            raise LookupError(f"thread {thread_id} has no request {request_id!r}")
        # Who may answer comes first, so a stranger learns nothing about who answered.
        if not may_answer(request, responder, via):
            raise NotAllowed(
                f"{responder} may not answer this request; approvers: {', '.join(request.approvers)}"
            )
        settled = thread.response_to(request_id)
        if settled is not None:
            raise Conflict(f"request {request_id} was already answered by {settled.responder}")
        if thread.pending is None or thread.pending.request_id != request_id:
            raise Conflict(f"request {request_id} is no longer pending")
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
            via=via,
            credential=credential,
        )
        return self.submit(thread, response)

    def pause(self, thread_id: str, by: str, reason: str | None = None) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status in (*FINAL, Status.DONE, Status.PAUSED):
            raise Conflict(
                f"thread {thread_id} is {thread.status}; only running or waiting threads can be paused"
            )
        return self.record(thread, Paused(by=by, reason=reason))

    def resume(self, thread_id: str, by: str) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status is not Status.PAUSED:
            raise Conflict(f"thread {thread_id} is {thread.status}, not paused")
        return self.submit(thread, Resumed(by=by))

    def cancel(self, thread_id: str, by: str, reason: str | None = None) -> Appended:
        thread = self.store.load(thread_id)
        if thread.status in FINAL:
            raise Conflict(f"thread {thread_id} is already {thread.status}")
        return self.record(thread, Cancelled(by=by, reason=reason))

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
