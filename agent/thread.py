"""A thread and the pure fold that derives its state from its events (factor 12).

``Thread`` keeps its events plus a few fields *derived* from them (status, the
pending human request, the consecutive-error count, ...). Only ``reduce`` sets
those fields, so a thread rebuilt from its events is always equal to the original:
the serialized form holds the events alone and loading replays them. The events are a
``History`` (``agent.history``), which grows in constant time and keeps the indexes the
lookups use, so folding an event costs the same on a long thread as on a short one.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from agent.approvals import call_digest, excluded, grant_covers, grant_fits, may_answer
from agent.events import (
    Error,
    Event,
    Grant,
    HumanRequest,
    HumanResponse,
    ModelDecided,
    ModelRequested,
    ProposedCall,
    RequestExpired,
    ToolCall,
    Trigger,
)
from agent.history import History


class Status(StrEnum):
    NEW = "new"
    RUNNING = "running"
    AWAITING_HUMAN = "awaiting_human"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({Status.FAILED, Status.CANCELLED})
"""States no later event leaves. (``done`` is not final: a follow-up message reopens it.)"""


class Thread(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    agent: str
    events: History = Field(default_factory=History)
    """The events, oldest first: an immutable sequence that ``reduce`` grows in constant time."""
    status: Status = Status.NEW
    pending: HumanRequest | None = None
    """The human request the thread waits on, if any."""
    approved: ProposedCall | None = None
    """A call a human approved that has not been recorded as a ``tool_call`` yet."""
    open_call: ToolCall | None = None
    """A recorded ``tool_call`` with no result yet: running now, or interrupted."""
    consecutive_errors: int = 0
    paused: bool = False
    deciding: ModelRequested | None = None
    """A model request with no answer yet: a caller process holds it, and no worker advances
    the thread until the answer (``model_decided`` or a model ``error``) is recorded."""
    decided: ModelDecided | None = None
    """The model's answer that the worker has not acted on yet."""
    approvals: tuple[str, ...] = ()
    """Who approved the pending request's call as it stands, while fewer than its quorum did."""
    grants: tuple[Grant, ...] = ()
    """Standing approvals given in this thread (not in the thread it was forked from) that
    were not revoked. Whether one has ended by its time is for whoever applies it to say."""

    @property
    def runnable(self) -> bool:
        """Whether a worker has something to do: running, and not waiting on the model."""
        return self.status is Status.RUNNING and self.deciding is None

    def to_json(self) -> str:
        """The thread as JSON: identity and events only; the rest is re-derived on load."""
        return _Stored(id=self.id, agent=self.agent, events=list(self.events)).model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Thread:
        raw = _Stored.model_validate_json(data)
        return replay(raw.id, raw.agent, raw.events)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ignored(self) -> frozenset[str]:
        """Ids of the responses and expiries reduce ignored (not an approver, an unknown or settled
        request, a deadline that had moved on): recorded, but never shown to the model."""
        return frozenset(event.id for event in self.events.ignored())

    @property
    def trigger(self) -> Trigger | None:
        """The first trigger: what the thread was started for."""
        return self.events.first_trigger()

    def request(self, request_id: str) -> HumanRequest | None:
        """The request as it stands: while it is pending, its current approvers and deadline
        (an expiry may have moved them), else as it was recorded."""
        if self.pending is not None and self.pending.request_id == request_id:
            return self.pending
        return self.events.first_request(request_id)

    def response_to(self, request_id: str) -> HumanResponse | None:
        """The response that settled ``request_id``, if one did."""
        return self.events.settled(request_id)


class _Stored(BaseModel):
    id: str
    agent: str
    events: list[Event]


def without_ignored_responses(thread: Thread) -> list[Event]:
    """The thread's events minus the responses and expiries reduce ignored."""
    return thread.events.heeded()


def reduce(thread: Thread, event: Event) -> Thread:
    """Fold one event into a thread. Pure: no I/O, no clock, no randomness."""
    changes = {} if thread.status in FINAL else _changes(thread, event)
    kind = event.type
    ignored = kind in _ANSWERS and "pending" not in changes
    partial = kind == "human_response" and changes.get("pending") is not None
    changes["events"] = thread.events.appended(event, ignored, partial)
    return _folded(thread, changes)


_ANSWERS = frozenset({"human_response", "request_expired"})
"""The types of the events that ``reduce`` ignores when they change nothing pending."""


def _folded(thread: Thread, changes: dict[str, Any]) -> Thread:
    """``thread`` with ``changes`` and the status they settle.

    What ``thread.model_copy(update=changes)`` makes (no validation, as there), in one copy of
    the fields: folding makes one thread per event, and pydantic's copy of its fields, field
    set and extras, twice when the status changed too, was most of what folding an event cost."""
    fields = {**thread.__dict__, **changes}
    if not _SETTLING.isdisjoint(changes):  # else the status, settled before, stays as it is
        fields["status"] = _settled_status(fields["status"], fields["paused"], fields["pending"])
    folded = Thread.__new__(Thread)
    object.__setattr__(folded, "__dict__", fields)
    object.__setattr__(folded, "__pydantic_fields_set__", _EVERY_FIELD)
    object.__setattr__(folded, "__pydantic_extra__", None)
    object.__setattr__(folded, "__pydantic_private__", None)
    return folded


def _changes(thread: Thread, event: Event) -> dict[str, Any]:
    """The derived fields that ``event`` changes (status is settled afterwards)."""
    # By the type's name rather than by class: a failed isinstance on a pydantic model costs
    # as much as the rest of the fold, and this tries up to a dozen.
    match event.type:
        case "trigger":
            return {"status": Status.RUNNING} if thread.status in (Status.NEW, Status.DONE) else {}
        case "model_requested":
            return {"deciding": event, "decided": None}
        case "model_decided" | "error" if event.request_id is not None:
            return _answered(thread, event)
        case "tool_call":
            approved = thread.approved
            if approved is not None and approved.call_id == event.call_id:
                approved = None
            return {"open_call": event, "approved": approved, **_ACTED}
        case "tool_result" | "error" if _stale_call(thread, event.call_id):
            return {}
        case "tool_result":
            return {**_close_call(thread, event.call_id), "consecutive_errors": 0}
        case "error":
            return {
                **_close_call(thread, event.call_id),
                "consecutive_errors": thread.consecutive_errors + 1,
                **_ACTED,
            }
        case "human_request":
            return {"pending": event, "approvals": (), **_ACTED}
        case "human_response":
            return _answer(thread, event)
        case "request_expired":
            return _expire(thread, event)
        case "done" if event.basis is not None and thread.events.trigger_since(event.basis):
            return {**_ACTED}
        case "done":
            return {
                "status": Status.DONE,
                "pending": None,
                "approved": None,
                "approvals": (),
                "consecutive_errors": 0,
                **_ACTED,
            }
        case "paused":
            return {"paused": True}
        case "resumed":
            return {"paused": False}
        case "cancelled":
            return {"status": Status.CANCELLED, "pending": None, "approved": None, "approvals": ()}
        case "failed":
            return {"status": Status.FAILED}
        case "forked":
            # A request copied without its answer is asked again by the copy's worker.
            return {"approved": None, "open_call": None, "deciding": None}
        case "grant_revoked":
            return {"grants": tuple(g for g in thread.grants if g.grant_id != event.grant_id)}
        case "context" | "agent_message":
            return {}
    raise AssertionError(f"reduce has no rule for {event.type!r} events")  # the union is closed


_ACTED = {"decided": None}
"""What every event that acts on the model's decision changes: the decision is used up."""


def _answered(thread: Thread, answer: ModelDecided | Error) -> dict[str, Any]:
    """Apply the answer to the request the thread waits on; an answer to another request (a
    late one, after the thread was forked or asked again) is kept but changes nothing."""
    deciding = thread.deciding
    if deciding is None or deciding.request_id != answer.request_id:
        return {}
    if isinstance(answer, ModelDecided):
        return {"deciding": None, "decided": answer}
    return {"deciding": None, "consecutive_errors": thread.consecutive_errors + 1}


def _stale_call(thread: Thread, call_id: str | None) -> bool:
    """A result or error of a call that is no longer open: a late report of a worker that lost
    the thread after the call was taken for interrupted. Kept in the log, but it changes nothing."""
    open_call = thread.open_call
    return call_id is not None and (open_call is None or open_call.call_id != call_id)


def _close_call(thread: Thread, call_id: str | None) -> dict[str, Any]:
    if thread.open_call is not None and thread.open_call.call_id == call_id:
        return {"open_call": None}
    return {}


def _answer(thread: Thread, response: HumanResponse) -> dict[str, Any]:
    """Apply a response only if it answers the pending request, its author may answer, and,
    for an approval, it binds the call's arguments as they stand (invariant 6)."""
    pending = thread.pending
    if pending is None or pending.request_id != response.request_id:
        return {}
    if not may_answer(pending, response.responder, response.via):
        return {}
    call = pending.call
    if pending.kind != "approval" or call is None:
        return _settled(None)
    if response.digest is not None and response.digest != call_digest(call):
        return {}
    if response.approved is not True:
        return _settled(None)  # a reject from any approver rejects (a requester may withdraw)
    if excluded(pending, response.responder):
        return {}
    if response.under is not None:
        return _settled(call) if _standing(thread, pending, response) else {}
    if response.arguments is not None and response.arguments != call.arguments:
        call = call.model_copy(update={"arguments": response.arguments})
        approvals: tuple[str, ...] = (response.responder,)  # earlier approvals saw other arguments
    elif any(person == response.responder for person in thread.approvals):
        return {}
    else:
        approvals = (*thread.approvals, response.responder)
    if len(approvals) < pending.quorum:
        return {"pending": pending.model_copy(update={"call": call}), "approvals": approvals}
    return {**_settled(call), "grants": _given(thread, pending, call, response)}


def _settled(approved: ProposedCall | None) -> dict[str, Any]:
    return {"pending": None, "approved": approved, "approvals": (), "consecutive_errors": 0}


def _standing(thread: Thread, pending: HumanRequest, response: HumanResponse) -> bool:
    """Whether the grant ``response`` names may stand in for approving ``pending``: a grant of
    this thread must still be live here; one given elsewhere for a whole tool was checked
    live, atomically with this response's append, by the runtime that recorded it."""
    grant = response.under
    if grant is None or grant.by != response.responder:
        return False
    if not grant_covers(grant, pending, thread.agent, response.at):
        return False
    if grant.scope == "tool" and grant.thread != thread.id:
        return True
    return grant.thread == thread.id and grant in thread.grants


def _given(
    thread: Thread, pending: HumanRequest, call: ProposedCall, response: HumanResponse
) -> tuple[Grant, ...]:
    """The thread's grants, plus the one ``response`` gives if the policy and its scope allow it."""
    grant = response.gives
    if grant is None or not pending.standing or pending.quorum > 1 or grant.thread != thread.id:
        return thread.grants
    if grant.agent != thread.agent or grant_fits(grant, call, response.responder, response.via) is not None:
        return thread.grants
    return (*thread.grants, grant)


def _expire(thread: Thread, expired: RequestExpired) -> dict[str, Any]:
    """Apply an expiry only to the request still waiting on the deadline it names."""
    pending = thread.pending
    if pending is None or pending.request_id != expired.request_id or pending.expires_at != expired.deadline:
        return {}
    if expired.outcome == "timed_out":
        return {"pending": None, "approvals": ()}
    asked_again = {
        "approvers": expired.approvers,
        "expires_at": expired.expires_at,
        "stage": pending.stage + 1,
    }
    return {"pending": pending.model_copy(update=asked_again)}


_SETTLED_ELSEWHERE = frozenset({Status.NEW, Status.DONE, *FINAL})
"""The states that only the events entering them set: the others follow from the flags."""
_EVERY_FIELD = frozenset(Thread.model_fields)
_SETTLING = frozenset({"status", "paused", "pending"})
"""The fields the status is settled from."""


def _settled_status(status: Status, paused: bool, pending: HumanRequest | None) -> Status:
    """Status follows from the flags, except for the terminal and not-started states."""
    if status in _SETTLED_ELSEWHERE:
        return status
    if paused:
        return Status.PAUSED
    if pending is not None:
        return Status.AWAITING_HUMAN
    return Status.RUNNING


def replay(thread_id: str, agent: str, events: Iterable[Event]) -> Thread:
    """Rebuild a thread by folding its events from the start."""
    thread = Thread(id=thread_id, agent=agent)
    for event in events:
        thread = reduce(thread, event)
    return thread


def fork(thread: Thread, at: int, new_id: str) -> Thread:
    """A new thread holding the first ``at`` events of ``thread`` (to retry from there)."""
    if not 0 <= at <= len(thread.events):
        count = len(thread.events)
        raise ValueError(
            f"cannot fork thread {thread.id} at event {at}: it has {count} events (use 0 to {count})"
        )
    return replay(new_id, thread.agent, thread.events[:at])
