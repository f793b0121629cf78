"""The runtime: launch, respond to, pause, resume, cancel and fork threads (factor 6).

Every control action is one call that appends an event (persisted first) and then
enqueues ``advance`` for the thread; the web API, the CLI and the channels all use
these calls, so they behave the same whichever door a request comes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, cast

import redis
import structlog
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from agent.approvals import Standing, call_digest
from agent.definition import AgentCannotRun, AgentSpec, Registry, UnknownAgent
from agent.events import (
    Cancelled,
    Clock,
    Error,
    Event,
    Forked,
    Grant,
    GrantRevoked,
    HumanRequest,
    HumanResponse,
    Origin,
    Paused,
    ProposedCall,
    Resumed,
    ToolResult,
    Trigger,
    new_id,
    utcnow,
)
from agent.loop import approval_request, describe_call, next_without_running
from agent.model import Model
from agent.thread import FINAL, Status, Thread, fork
from bot import logs, tracing
from bot.agents import load_registry
from bot.approvals.decisions import checked
from bot.approvals.grants import Grants, live_key
from bot.delivery import outbox
from bot.delivery.outbound import outbound_channels
from bot.metrics.observe import delivering, recorded, steps
from bot.model import queue as model_queue
from bot.model.choice import check_model
from bot.settings import Settings
from bot.state.round_trips import Along, together
from bot.state.store import (
    UNLOCKED,
    Appended,
    LockLost,
    RequirementGone,
    Store,
    ThreadExists,
    ThreadNotFound,
    key,
)
from channels.gateway import ROUTE, Conflict, Outbound
from channels.request_text import check_request_text

log = structlog.get_logger(__name__)

QUEUE = "outerloop"
ADVANCE_RETRY = Retry(max=5, interval=[1, 2, 5, 10, 30])
"""Retries for infrastructure failures (Redis hiccups, a worker process that died mid-job)."""
WAITING_JOB = frozenset({JobStatus.SCHEDULED, JobStatus.DEFERRED})
"""Job states that will run later by themselves. A started job has taken its thread's mark off
(``taken``), so a mark naming one is left by a job that died at its start."""
QUEUED_TTL = 24 * 3600
"""How long a thread's "advance job queued" mark lasts at most; the recovery sweep also
checks the job it names, so a mark whose job was lost does not hold the thread that long."""

_TAKEN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Runtime:
    settings: Settings
    connection: redis.Redis
    agents: Registry
    outbound: dict[str, Outbound] = field(default_factory=dict)
    """Each channel's outbound side, by the channel name in a trigger's origin."""
    models: dict[str, Model] = field(default_factory=dict)
    """Models by agent name that the caller answers with instead of the configured one (tests)."""
    clock: Clock = field(default=utcnow)
    """"Now" for the deadlines of human requests; tests pass a clock they control."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        connection = redis.Redis.from_url(settings.require_redis_url())
        return cls(settings, connection, load_registry(settings), outbound_channels(settings))

    @cached_property
    def store(self) -> Store:
        return Store(self.connection, owes=self.owes, retention=self._retention, observe=recorded)

    @cached_property
    def copier(self) -> Store:
        """The store without the metrics, for the events a fork copies: they were counted in
        the thread they come from."""
        return Store(self.connection, owes=self.owes, retention=self._retention)

    @property
    def _retention(self) -> float | None:
        return self.settings.retention_days * 86400 if self.settings.retention_days else None

    def owes(self, thread: Thread, event: Event) -> bool:
        """Whether people must see ``event``: the thread's channel shows its kind (invariant 9)."""
        return outbox.wants(self.outbound, thread, event)

    @cached_property
    def grants(self) -> Grants:
        return Grants(self.connection)

    @cached_property
    def queue(self) -> Queue:
        return Queue(QUEUE, connection=self.connection)

    @cached_property
    def outbound_queue(self) -> Queue:
        return Queue(outbox.QUEUE, connection=self.connection)

    def enqueue(self, thread_id: str, along: Along | None = None) -> bool:
        """Queue an advance job for the thread, unless one is queued, scheduled or not yet started;
        True if this call queued one. ``along``'s writes go first, in the same round trip.

        The job's id is kept in ``queued:{id}`` until a worker takes the job (``taking``), so
        any number of wake-ups while it waits make one job; the job will see all their events.
        A mark whose job is gone (a queue emptied by hand, a job lost with Redis) is replaced."""
        job_id, marker = new_id(), key("queued", thread_id)
        mark: Along = lambda pipe: pipe.set(marker, job_id, nx=True, ex=QUEUED_TTL)  # noqa: E731
        if not together(self.connection, along, mark):
            waiting = cast(bytes | None, self.connection.get(marker))
            if waiting is None or self._job_active(waiting.decode()):
                return False
            self.forget_queued(thread_id, waiting)
            if not self.connection.set(marker, job_id, nx=True, ex=QUEUED_TTL):
                return False
        try:
            # RQ's enqueue makes two transactions of its own (the queue's name, then the job);
            # handed a pipeline, it makes them one.
            with self.connection.pipeline() as pipe:
                self.queue.enqueue(
                    "bot.work.worker.advance_job",
                    thread_id,
                    job_id=job_id,
                    retry=ADVANCE_RETRY,
                    job_timeout=self.settings.job_timeout,
                    result_ttl=60,
                    failure_ttl=7 * 24 * 3600,
                    description=f"advance thread {thread_id}",
                    pipeline=pipe,
                )
                pipe.execute()
        except Exception:
            self.forget_queued(thread_id, job_id.encode())
            raise
        return True

    def _job_active(self, job_id: str) -> bool:
        """Whether the job will still run: queued *and* in the queue (a job a worker took just as
        Redis went away is marked queued but is in no queue), or scheduled for a retry."""
        try:
            status = Job.fetch(job_id, connection=self.connection).get_status()
        except NoSuchJobError:
            return False
        if status is JobStatus.QUEUED:
            return self.connection.lpos(self.queue.key, job_id) is not None
        return status in WAITING_JOB

    def taking(self, thread_id: str, job_id: str) -> Along:
        """A worker takes the thread's queued job: the next wake-up needs a job of its own. The
        write rides along the worker's first command (``ThreadLock.acquire``)."""
        return lambda pipe: pipe.eval(_TAKEN, 1, key("queued", thread_id), job_id)

    def forget_queued(self, thread_id: str, job_id: bytes | None) -> None:
        if job_id is not None:
            self.connection.eval(_TAKEN, 1, key("queued", thread_id), job_id)

    def record(self, thread: Thread, event: Event, fence: str | None = None) -> Appended:
        """Append an event (fenced by the lock value ``fence``, for a worker) and hand it to the
        thread's channel if people should see it. The append itself records the delivery as
        owed, so if queueing it fails, the outbox sweep queues it later (invariant 9).

        An approval request that a live standing approval covers is answered at once, under
        that grant (``_stand_in``): the worker's next step runs the call. The request's delivery
        is queued only after that answer is stored, so it shows the call approved under the
        grant, never with buttons; until then only the outbox sweep could deliver it, and only
        once it has been owed for ``OUTERLOOP_DELIVERY_GRACE``."""
        return self._recorded(self.store.append(thread, event, fence=fence), event, fence)

    def record_if_current(self, thread: Thread, event: Event, fence: str | None = None) -> Appended | None:
        """``record`` as a compare-and-set: only if nothing was appended since ``thread`` was
        loaded; None if something was. For an event decided on the thread exactly as it stands,
        by a process that does not hold its lock (a caller's answer, ``step_here``)."""
        appended = self.store.append_if_current(thread, event, fence=fence)
        return None if appended is None else self._recorded(appended, event, fence)

    def runnable_agent(self, name: str) -> AgentSpec:
        """The agent named ``name``; raises ``UnknownAgent`` or ``AgentCannotRun`` (a missing
        prompt file, tool server or model) naming what to fix."""
        spec = self.agents.get(name)
        check_model(spec, self.settings)
        spec.ensure_runnable()
        return spec

    def step_here(self, thread: Thread) -> Thread:
        """Take ``thread``'s next step in this process if it runs nothing: a model request, or
        acting on a decision to finish, to ask a person or to ask approval
        (``agent.loop.next_without_running``). Returns the thread after it, or ``thread`` if the
        step is a worker's.

        The step lands only on the thread exactly as it was read, and only while no worker
        holds its lock (a compare-and-set that requires the lock free): for one event, what
        holding the lock guarantees a worker. If the thread moved on, a worker takes the step."""
        try:
            spec = self.runnable_agent(thread.agent)
        except (UnknownAgent, AgentCannotRun):
            return thread  # a worker fails the thread, saying why
        event = next_without_running(thread, spec, self.clock)
        if event is None:
            return thread

        def record(event: Event) -> Thread:
            appended = self.record_if_current(thread, event, fence=UNLOCKED)
            if appended is None:
                raise LockLost(f"thread {thread.id} moved on")
            return appended.thread

        with tracing.run(thread) as observe, steps(spec.name, lambda: None) as begin:
            begin()
            try:
                stepped = observe(record)(event)
            except LockLost:  # appended meanwhile, or held by a worker: its step now
                log.info("step.left_to_worker", thread_id=thread.id, event_type=event.type)
                return thread
        log.info("event.recorded", thread_id=thread.id, event_type=event.type, status=stepped.status.value)
        return stepped

    def wake(self, thread: Thread) -> None:
        """Get ``thread`` going after an event was recorded that may let it go on: its next step
        here if that runs nothing (``step_here``), a worker for any other; a thread that waits
        on the model is posted to the callers (again: a lost post is found this way too)."""
        stepped = self.step_here(thread)
        if stepped.deciding is not None:
            model_queue.post(self.connection, thread.id)
        elif stepped.runnable:
            self.enqueue(thread.id)

    def _recorded(self, appended: Appended, event: Event, fence: str | None) -> Appended:
        if not appended.applied:
            return appended
        if isinstance(event, HumanRequest) and event.kind == "approval":
            stood, response = appended, None
            try:
                stood, response = self._stand_in(appended, event, fence)
            finally:  # whatever happened, the request is shown now (as approved, if it was)
                self.announce(stood.thread, event)
            if response is not None:
                self.announce(stood.thread, response)
            return stood
        self.announce(appended.thread, event)
        return appended

    def _stand_in(
        self, appended: Appended, request: HumanRequest, fence: str | None
    ) -> tuple[Appended, HumanResponse | None]:
        """Approve ``request`` under a live grant that covers it, if there is one: the thread
        after that and the approving response (``appended`` and None if not). The append
        requires the grant's live key, so a revocation racing it wins (``bot.approvals.grants``)."""
        thread, now = appended.thread, self.clock()
        grant = self.grants.covering(thread, request, now)
        if grant is None or request.call is None:
            return appended, None
        response = HumanResponse(
            at=now,
            request_id=request.request_id,
            responder=grant.by,
            via=grant.via,
            approved=True,
            channel="grant",
            digest=call_digest(request.call),
            under=grant,
        )
        try:
            stood = self.store.append(thread, response, fence=fence, requires=live_key(grant.grant_id))
        except RequirementGone:
            log.info(
                "grant.ended_meanwhile", thread_id=thread.id, agent=thread.agent, grant_id=grant.grant_id
            )
            return appended, None
        log.info(
            "grant.applied",
            thread_id=thread.id,
            agent=thread.agent,
            event_type=response.type,
            grant_id=grant.grant_id,
            tool=request.call.tool,
        )
        return stood, response

    def record_late(self, thread_id: str, event: ToolResult | Error) -> Appended:
        """Keep the result of a tool that finished after its worker lost the thread.

        The worker that lost the lock writes nothing else; this one event is appended without
        the lock because it is a fact, not a decision: while its call is still open (nobody
        took the call for interrupted, since its holder was alive), it closes the call and the
        thread goes on as if nothing happened; if the call was taken for interrupted meanwhile,
        ``reduce`` keeps it as information for the model and it changes nothing."""
        appended = self.record(self.store.load(thread_id), event)
        self.enqueue(thread_id)
        log.warning(
            "event.recorded_late",
            thread_id=thread_id,
            agent=appended.thread.agent,
            event_type=event.type,
            call_id=event.call_id,
        )
        return appended

    def announce(self, thread: Thread, event: Event) -> None:
        """Queue the delivery of a stored event, if the thread's channel shows its kind."""
        if self.owes(thread, event):
            try:
                self.queue_delivery(thread.id, event.id)
            except redis.RedisError:
                log.warning(
                    "delivery.deferred", thread_id=thread.id, agent=thread.agent, event_type=event.type
                )

    def queue_delivery(self, thread_id: str, event_id: str) -> None:
        self.outbound_queue.enqueue(
            "bot.work.worker.deliver_job",
            thread_id,
            event_id,
            retry=outbox.DELIVERY_RETRY,
            result_ttl=60,
            failure_ttl=7 * 24 * 3600,
            description=f"deliver event {event_id} of thread {thread_id}",
        )

    def deliver(self, thread_id: str, event_id: str) -> None:
        """Show one event through the thread's channel and keep the channel's receipt.

        Idempotent per event: a delivery that is no longer owed (done by an earlier job) or
        that another job is making right now is skipped."""
        with logs.working_on(thread_id=thread_id, event_id=event_id):
            if not self.store.is_owed(thread_id, event_id):
                log.info("delivery.not_owed")
                return
            busy = key("delivering", event_id)
            if not self.connection.set(busy, "1", nx=True, px=int(self.settings.delivery_grace * 1000)):
                log.info("delivery.in_progress")
                return
            try:
                self._deliver(thread_id, event_id)
            finally:
                self.connection.delete(busy)

    def _deliver(self, thread_id: str, event_id: str) -> None:
        thread = self.store.load(thread_id)
        event = outbox.find_event(thread, event_id)
        logs.about(agent=thread.agent, event_type=event.type)
        channel = outbox.channel_of(thread)
        if channel is None or channel not in self.outbound:
            log.warning("delivery.no_channel", channel=channel)
            self.store.settle(thread_id, event_id)
            return
        with delivering(channel), tracing.delivery(thread_id, event, channel):
            receipt = self.outbound[channel].deliver(thread, event, self.store)
        if receipt:
            self.store.keep_receipt(thread_id, event_id, receipt)
            if ROUTE in receipt:  # replies to what was just sent continue this thread
                self.store.bind_route(receipt[ROUTE], thread_id)
        self.store.settle(thread_id, event_id)
        log.info("delivery.done", channel=channel)

    def submit(self, thread: Thread | str, event: Event) -> Appended:
        """Persist an event, then wake the thread (invariant 3: persisted before acknowledged)."""
        appended = self.record(self.store.load(thread) if isinstance(thread, str) else thread, event)
        if appended.applied:
            self.wake(appended.thread)
        log.info(
            "event.submitted",
            thread_id=appended.thread.id,
            agent=appended.thread.agent,
            event_type=event.type,
            duplicate=not appended.applied,
        )
        return appended

    def launch(self, agent: str, text: str, origin: Origin | None = None, key: str | None = None) -> Appended:
        """Start a new thread for ``agent`` with ``text``; a repeated ``key`` starts nothing."""
        self.agents.get(agent)
        trigger = Trigger(
            text=check_request_text(text), origin=origin or Origin(channel="api", sender="api"), key=key
        )
        return self._start(new_id(), agent, trigger)

    def _start(self, thread_id: str, agent: str, trigger: Trigger, **context: str) -> Appended:
        """Create a thread with its trigger, show the trigger to its channel, and wake it."""
        appended = self.store.create(thread_id, agent, trigger)
        if appended.applied:
            with tracing.launched(thread_id, agent, trigger.origin.channel, trigger.at):
                self.announce(appended.thread, trigger)
                self.wake(appended.thread)
            log.info("thread.launched", thread_id=thread_id, agent=agent, **context)
        return appended

    def converse(self, route: str, agent: str, trigger: Trigger) -> Appended:
        """Add ``trigger`` to the conversation's thread, starting one for ``agent`` if needed."""
        self.agents.get(agent)
        check_request_text(trigger.text)
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

    def arguments_schema(self, agent: str, tool: str) -> dict[str, Any] | None:
        try:
            found = self.agents.get(agent).tool(tool)
        except LookupError:  # the agent was removed since the request was made
            return None
        return found.arguments.model_json_schema() if found is not None else None

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
        channel: str | None = None,
        digest: str | None = None,
        arguments: dict[str, Any] | None = None,
        standing: Standing | None = None,
    ) -> Appended:
        """Answer a pending human request, after checking it is pending and who may answer.

        The checks and the append are one atomic step (invariant 7): the append is a
        compare-and-set on the log the checks read, so of racing answers exactly one is
        stored, and every other one is checked again against the log with that answer in it
        and refused naming it. ``digest`` binds an approval to the arguments the person saw
        (without it, to the arguments as they stand); ``arguments`` approves edited ones;
        ``standing`` gives a standing approval along with it (``bot.approvals.decisions``)."""
        thread = self.store.load(thread_id)
        spec = self.agents.get(thread.agent)
        answer_given = HumanResponse(
            request_id=request_id,
            responder=responder,
            approved=approved,
            comment=comment,
            answer=answer,
            key=key,
            via=via,
            credential=credential,
            channel=channel,
            digest=digest,
            arguments=arguments,
        )
        while True:
            response = checked(thread, spec, answer_given, standing, self.clock())
            appended = self.store.append_if_current(thread, response)
            if appended is not None:
                break
            thread = self.store.refresh(thread)
        if appended.applied:
            if response.gives is not None and response.gives in appended.thread.grants:
                self.grants.add(response.gives, self.clock())
            tracing.responded(thread_id, thread.agent, response)
            self.announce(appended.thread, response)
            self.wake(appended.thread)
        log.info(
            "event.submitted",
            thread_id=thread_id,
            agent=thread.agent,
            event_type=response.type,
            duplicate=not appended.applied,
        )
        return appended

    def revoke(self, grant_id: str, by: str) -> Grant:
        """End a standing approval now: out of the index first (no call is approved under it
        after this returns), then ``grant_revoked`` in the thread it was given in."""
        grant = self.grants.get(grant_id)
        self.grants.end(grant)
        try:
            self.store.append(self.store.load(grant.thread), GrantRevoked(grant_id=grant_id, by=by))
        except ThreadNotFound:
            log.info("grant.thread_gone", grant_id=grant_id, thread_id=grant.thread)
        log.info("grant.revoked", grant_id=grant_id, thread_id=grant.thread, by=by)
        return grant

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
        """A new thread with the first ``at`` events of ``thread_id``, advanced from there.

        Approvals do not travel (invariant 6): a call approved in the source but not run
        there by event ``at`` (or running there at that point) is asked for again."""
        source = self.store.load(thread_id)
        count = len(source.events)
        if not 1 <= at <= count:  # a thread starts with its trigger: a fork keeps at least that
            raise ValueError(
                f"cannot fork thread {thread_id} at event {at}: it has {count} events (use 1 to {count})"
            )
        copy = fork(source, at=at, new_id=new_id())
        # Delivery keys belong to the original thread; copies must not be taken for duplicates.
        events = [event.model_copy(update={"key": None}) for event in copy.events]
        thread = self.store.create(copy.id, copy.agent, events[0]).thread
        for event in events[1:]:
            thread = self.copier.append(thread, event).thread
        forked = Forked(source=thread_id, kept=at)
        thread = self.store.append(thread, forked).thread
        carried = _carried_call(copy)
        if carried is not None:
            spec = self.agents.get(copy.agent)
            text = (
                f"This thread is a copy of thread {thread_id}, where {describe_call(carried)} was "
                "approved or running. Approvals do not carry over to a copy: approve to run it here."
            )
            thread = self.record(
                thread, approval_request(spec, spec.tool(carried.tool), carried, text, thread)
            ).thread
        with tracing.launched(thread.id, thread.agent, "fork", forked.at, source=thread_id):
            self.enqueue(thread.id)
        log.info("thread.forked", thread_id=thread.id, agent=thread.agent, source=thread_id, at=at)
        return Appended(thread=thread, applied=True)


def _carried_call(copy: Thread) -> ProposedCall | None:
    """The call a fork would run on its source's authority: approved but not run, or open."""
    if copy.approved is not None:
        return copy.approved.model_copy(update={"call_id": new_id()})
    call = copy.open_call
    if call is None:
        return None
    return ProposedCall(call_id=new_id(), tool=call.tool, arguments=call.arguments)
