"""Thread events: the only state an agent has (12-factor agents, factors 5 and 12).

Every event is an immutable pydantic model tagged by ``type``; ``Event`` is their
discriminated union, so a list of events round-trips through JSON losslessly.
Identifiers and timestamps are filled in when an event is *made* (by a channel or
the loop), never when it is folded, which keeps ``reduce`` pure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


def new_id() -> str:
    """A random, unguessable identifier (also used as the email reply token)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


Clock = Callable[[], datetime]
"""Where code that stamps deadlines gets "now" from; tests pass a clock they control."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Origin(_Frozen):
    """Where a trigger came from, and so where the agent's replies go.

    ``address`` holds the channel's native reply address (Slack team/channel/thread_ts,
    an email Message-ID and subject, ...); the kernel never interprets it.
    """

    channel: str
    sender: str
    address: dict[str, str] = Field(default_factory=dict)


class ProposedCall(_Frozen):
    """A tool call the model chose, waiting for a human's approval."""

    call_id: str
    tool: str
    arguments: dict[str, Any]


class _Event(_Frozen):
    id: str = Field(default_factory=new_id)
    at: datetime = Field(default_factory=utcnow)
    key: str | None = None
    """Stable dedupe key from the source (Slack event_id, Message-ID, delivery id)."""


class Trigger(_Event):
    """A person or a system asked the agent for something."""

    type: Literal["trigger"] = "trigger"
    text: str
    origin: Origin


class Context(_Event):
    """Data fetched deterministically before the model is asked (factor 13)."""

    type: Literal["context"] = "context"
    name: str
    content: str


class ToolCall(_Event):
    """A tool is about to run. Recorded *before* it runs (invariant 5)."""

    type: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    arguments: dict[str, Any]
    holder: str | None = None
    """Who runs the call (the runtime's lock holder: worker, process, job token). A call
    with no result is taken for interrupted only once this holder is known to be gone."""


class ToolResult(_Event):
    """What a tool returned. A result that arrives after its call stopped being open (the
    worker lost the thread and the call was taken for interrupted) is kept as a fact for the
    model, but changes no state."""

    type: Literal["tool_result"] = "tool_result"
    call_id: str
    tool: str
    output: str


ErrorSource = Literal["tool", "arguments", "model", "interrupted"]


class Error(_Event):
    """Something failed; the message goes back into the context (factor 9)."""

    type: Literal["error"] = "error"
    source: ErrorSource
    message: str
    tool: str | None = None
    call_id: str | None = None
    request_id: str | None = None
    """For a model error: the ``model_requested`` it answers (the request is closed by it)."""


class ModelRequested(_Event):
    """The thread needs the model's next step. Recorded by the worker, which then lets go;
    a caller process answers it with ``model_decided`` (or a model ``error``).

    The request is rendered again from the log: the first ``basis`` events of the thread, with
    the agent's prompt and tools; ``version`` is a hash of the two, so a caller can tell that
    the agent changed between the request and the call."""

    type: Literal["model_requested"] = "model_requested"
    request_id: str
    agent: str
    version: str
    basis: int
    """How many events the model sees: those before this one."""


class Usage(_Frozen):
    """Tokens a model call used, as the API counted them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


class ModelDecided(_Event):
    """The model's answer to a ``model_requested``: one tool call, not yet validated.

    Recorded once per request (compare-and-set on the log), so a crash after the model
    answered never asks it again; the worker's next step validates it and acts."""

    type: Literal["model_decided"] = "model_decided"
    request_id: str
    basis: int
    """How many events the model saw (the request's ``basis``)."""
    tool: str
    arguments: dict[str, Any]
    model: str
    stop_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    latency: float = 0.0
    """Seconds from sending the request to its answer (retries included)."""


RequestKind = Literal["approval", "question"]


class Expiry(_Frozen):
    """How long a human request waits, and what happens when nobody answers in time.

    When ``wait`` passes, the same approvers are reminded ``reminders`` times (each
    reminder waits ``wait`` again); then, if ``escalate_to`` names a group, the request
    moves to that group for one more ``wait``; after that it times out: an approval
    counts as not given, and the model is told. A thread never waits forever silently.
    """

    wait: timedelta = Field(gt=timedelta(0))
    reminders: int = Field(default=0, ge=0)
    escalate_to: tuple[str, ...] = ()


GrantScope = Literal["thread", "call", "tool"]
"""How far a standing approval reaches: every call of its tool in the thread it was given in
(``thread``); calls with exactly the arguments it approved, in that thread (``call``); every
call of its tool by the agent in any thread, until it ends (``tool``)."""


class Grant(_Frozen):
    """A standing approval: an approver said yes to more than the one call they were asked about.

    Given with an approving ``HumanResponse`` (its ``gives``) and named by every response
    it later stands in for (their ``under``), so the log shows who approved what, and when."""

    grant_id: str = Field(default_factory=new_id)
    scope: GrantScope
    agent: str
    tool: str
    thread: str
    """The thread it was given in."""
    by: str
    via: str | None = None
    """The approvers entry that let ``by`` give it (a group), as on their response."""
    digest: str | None = None
    """For the ``call`` scope: the digest of the arguments it covers (``agent.approvals.digest``)."""
    until: datetime | None = None
    """When it ends by itself; None: when it is revoked (or its thread forked away from)."""


class HumanRequest(_Event):
    """The agent asks a person: approve ``call``, or answer ``text`` (factor 7)."""

    type: Literal["human_request"] = "human_request"
    request_id: str
    kind: RequestKind
    text: str
    call: ProposedCall | None = None
    approvers: tuple[str, ...] = ()
    """Who may answer; empty means anyone who can reach the thread."""
    expires_at: datetime | None = None
    """When the request expires (see ``expiry``); None: it waits until answered."""
    expiry: Expiry | None = None
    stage: int = 0
    """How often the request has expired and been asked again. Always 0 in a recorded
    request: ``reduce`` counts it up in the thread's pending copy (see ``RequestExpired``)."""
    quorum: int = Field(default=1, ge=1)
    """How many distinct approvers must approve ``call`` (the tool's ``min_approvals``)."""
    excluded: tuple[str, ...] = ()
    """Who may not approve ``call`` however they reach it: the person who started the thread
    and whoever wrote the message that led to the call (separation of duties)."""
    standing: bool = False
    """Whether the tool's policy lets an approver approve with a standing scope (a ``Grant``)."""


class HumanResponse(_Event):
    """A person answered a ``HumanRequest``."""

    type: Literal["human_response"] = "human_response"
    request_id: str
    responder: str
    approved: bool | None = None
    comment: str | None = None
    answer: str | None = None
    via: str | None = None
    """The approvers entry that let ``responder`` answer, when it is not the responder
    themself: a group the channel found them in (e.g. a Slack user group)."""
    credential: str | None = None
    """Which credential proved the responder, when the door has several: for the HTTP API
    ``api`` (the shared token) or ``token:<id>`` (a person's token). Never a secret."""
    channel: str | None = None
    """The door the answer came through: ``slack``, ``email``, ``api``, ``cli`` or ``grant``."""
    digest: str | None = None
    """The digest of the arguments the responder saw and decides on (``agent.approvals.digest``);
    an approval is bound to it, and ignored once the pending call's arguments differ."""
    arguments: dict[str, Any] | None = None
    """Arguments the approver changed the call's to (the request keeps the original ones)."""
    gives: Grant | None = None
    """A standing approval the approver gives along with this approval."""
    under: Grant | None = None
    """The standing approval this response stands for: the call was in its scope, so nobody
    was waited for (``channel`` is then ``grant`` and ``responder`` who gave it)."""


ExpiryOutcome = Literal["reminded", "escalated", "timed_out"]


class RequestExpired(_Event):
    """Nobody answered a human request by its deadline, and what happened next.

    Decided by ``agent.expiry.expire`` from the request's ``Expiry``: the same approvers
    are reminded, the request moves to the escalation group (both keep the request id
    and set a new deadline), or it times out and closes unanswered.
    """

    type: Literal["request_expired"] = "request_expired"
    request_id: str
    deadline: datetime
    """The ``expires_at`` that passed. ``reduce`` applies the event only while the request
    still waits on this deadline, so an expiry that lost a race (with an answer, or with
    another scheduler's expiry) changes nothing."""
    outcome: ExpiryOutcome
    approvers: tuple[str, ...] = ()
    """Who is asked now: the same people (reminded) or the escalation group (escalated)."""
    expires_at: datetime | None = None
    """The new deadline (reminded, escalated)."""


class GrantRevoked(_Event):
    """A standing approval given in this thread ends before its time."""

    type: Literal["grant_revoked"] = "grant_revoked"
    grant_id: str
    by: str


class AgentMessage(_Event):
    """Something the agent or the runtime tells the humans on the thread."""

    type: Literal["agent_message"] = "agent_message"
    text: str


class Done(_Event):
    type: Literal["done"] = "done"
    message: str
    basis: int | None = None
    """How many events the model had seen when it decided to finish. A trigger that
    arrived after that point was not answered, so it keeps the thread running."""


class Paused(_Event):
    type: Literal["paused"] = "paused"
    by: str
    reason: str | None = None


class Resumed(_Event):
    type: Literal["resumed"] = "resumed"
    by: str


class Cancelled(_Event):
    type: Literal["cancelled"] = "cancelled"
    by: str
    reason: str | None = None


class Forked(_Event):
    """This thread is a copy of the first ``kept`` events of ``source``. Approvals do not
    travel: a call approved in the source but not run there needs a new approval here."""

    type: Literal["forked"] = "forked"
    source: str
    kept: int


class Failed(_Event):
    """The runtime gave up on the thread (e.g. infrastructure retries exhausted)."""

    type: Literal["failed"] = "failed"
    reason: str


Event = Annotated[
    Trigger
    | Context
    | ToolCall
    | ToolResult
    | Error
    | HumanRequest
    | HumanResponse
    | RequestExpired
    | GrantRevoked
    | AgentMessage
    | ModelRequested
    | ModelDecided
    | Done
    | Paused
    | Resumed
    | Cancelled
    | Forked
    | Failed,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENTS_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def parse_event(data: str | bytes) -> Event:
    """Load one event from its JSON form."""
    return EVENT_ADAPTER.validate_json(data)
