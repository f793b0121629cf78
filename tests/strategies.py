"""Hypothesis strategies for random but well-formed event sequences.

``event_sequences()`` starts with a trigger and then draws events of every type.
Human responses answer an earlier request (the latest is the likeliest, so it is
often the pending one) or an unknown id, from an approver or a stranger; tool results
and errors name an earlier call or an unknown one. Ids and timestamps are drawn too,
so a failing example replays exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from hypothesis import strategies as st

from agent.events import (
    AgentMessage,
    Cancelled,
    Context,
    Done,
    Error,
    ErrorSource,
    Event,
    Expiry,
    Failed,
    HumanRequest,
    HumanResponse,
    ModelDecided,
    ModelRequested,
    Origin,
    Paused,
    ProposedCall,
    RequestExpired,
    Resumed,
    ToolCall,
    ToolResult,
    Trigger,
)

APPROVERS = ("alice", "bob")
PEOPLE = (*APPROVERS, "mallory")
TOOLS = ("list_tags", "deploy", "lookup")

ids = st.text(alphabet="0123456789abcdef", min_size=6, max_size=6)
texts = st.text(max_size=20)
people = st.sampled_from(PEOPLE)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
arguments = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
origins = st.builds(
    Origin,
    channel=st.sampled_from(("slack", "email", "cron", "webhook", "cli")),
    sender=people,
    address=st.dictionaries(st.sampled_from(("channel", "thread_ts", "message_id")), ids, max_size=2),
)


@dataclass
class _History:
    """What the sequence so far holds that later events may refer to."""

    call_ids: list[str] = field(default_factory=list)
    requests: list[HumanRequest] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)
    """Model request ids."""
    max_quorum: int = 1
    """The most approvals an approval request may need."""


def _earlier_or_unknown(draw: st.DrawFn, earlier: list[str]) -> str:
    """An id from ``earlier`` (the latest first, so it shrinks towards it) or a fresh one."""
    if not earlier or draw(st.booleans()):
        return draw(ids)
    return draw(st.sampled_from(earlier[::-1]))


def _trigger(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Trigger(**stamp, text=draw(texts), origin=draw(origins), key=draw(st.none() | ids))


def _context(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Context(**stamp, name=draw(st.sampled_from(("on_call", "deploy_window"))), content=draw(texts))


def _tool_call(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    call_id = draw(ids)
    history.call_ids.append(call_id)
    return ToolCall(**stamp, call_id=call_id, tool=draw(st.sampled_from(TOOLS)), arguments=draw(arguments))


def _tool_result(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    call_id = _earlier_or_unknown(draw, history.call_ids)
    return ToolResult(**stamp, call_id=call_id, tool=draw(st.sampled_from(TOOLS)), output=draw(texts))


def _error(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Error(
        **stamp,
        source=draw(st.sampled_from(get_args(ErrorSource))),
        message=draw(texts),
        tool=draw(st.none() | st.sampled_from(TOOLS)),
        call_id=_earlier_or_unknown(draw, history.call_ids) if draw(st.booleans()) else None,
    )


def _model_requested(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    request_id = draw(ids)
    history.asked.append(request_id)
    return ModelRequested(
        **stamp, request_id=request_id, agent="deploy", version="v1", basis=draw(st.integers(0, 30))
    )


def _model_answer(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    request_id = _earlier_or_unknown(draw, history.asked)
    if draw(st.booleans()):
        return Error(**stamp, source="model", message=draw(texts), request_id=request_id)
    return ModelDecided(
        **stamp,
        request_id=request_id,
        basis=draw(st.integers(0, 30)),
        tool=draw(st.sampled_from(TOOLS)),
        arguments=draw(arguments),
        model="claude-test",
    )


def _human_request(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    kind = draw(st.sampled_from(("approval", "question")))
    proposed = ProposedCall(call_id=draw(ids), tool=draw(st.sampled_from(TOOLS)), arguments=draw(arguments))
    request = HumanRequest(
        **stamp,
        request_id=draw(ids),
        kind=kind,
        text=draw(texts),
        call=proposed if kind == "approval" else None,
        quorum=draw(st.integers(1, history.max_quorum)) if kind == "approval" else 1,
        approvers=tuple(draw(st.lists(st.sampled_from(APPROVERS), unique=True))),
        expires_at=draw(st.none() | st.just(stamp["at"] + timedelta(hours=1))),
        expiry=draw(
            st.none()
            | st.builds(
                Expiry,
                wait=st.just(timedelta(hours=1)),
                reminders=st.integers(0, 2),
                escalate_to=st.just(("bob",)),
            )
        ),
    )
    history.requests.append(request)
    return request


def _human_response(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    latest_first = history.requests[::-1]
    request = draw(st.just(latest_first[0]) | st.sampled_from(latest_first)) if latest_first else None
    request_id = request.request_id if request is not None and draw(st.booleans()) else draw(ids)
    allowed = request.approvers if request is not None and request.approvers else PEOPLE
    return HumanResponse(
        **stamp,
        request_id=request_id,
        responder=draw(st.sampled_from(allowed) | people),
        approved=draw(st.none() | st.booleans()),
        comment=draw(st.none() | texts),
        answer=draw(st.none() | texts),
        via=draw(st.none() | st.sampled_from(allowed) | people),
    )


def _request_expired(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    """Expires an earlier request, at its deadline or a wrong one (as a stale sweep would)."""
    request = draw(st.sampled_from(history.requests[::-1])) if history.requests else None
    deadline = request.expires_at if request is not None and request.expires_at else stamp["at"]
    return RequestExpired(
        **stamp,
        request_id=request.request_id if request is not None else draw(ids),
        deadline=draw(st.just(deadline) | st.just(deadline - timedelta(minutes=1))),
        outcome=draw(st.sampled_from(("reminded", "escalated", "timed_out"))),
        approvers=tuple(draw(st.lists(st.sampled_from(APPROVERS), unique=True))),
        expires_at=draw(st.none() | st.just(stamp["at"] + timedelta(hours=1))),
    )


def _agent_message(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return AgentMessage(**stamp, text=draw(texts))


def _done(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Done(**stamp, message=draw(texts))


def _paused(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Paused(**stamp, by=draw(people), reason=draw(st.none() | texts))


def _resumed(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Resumed(**stamp, by=draw(people))


def _cancelled(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Cancelled(**stamp, by=draw(people), reason=draw(st.none() | texts))


def _failed(draw: st.DrawFn, history: _History, stamp: dict[str, Any]) -> Event:
    return Failed(**stamp, reason=draw(texts))


_Builder = Callable[[st.DrawFn, _History, dict[str, Any]], Event]
_ONGOING: tuple[_Builder, ...] = (
    _trigger,
    _context,
    _model_requested,
    _model_answer,
    _tool_call,
    _tool_result,
    _error,
    _human_request,
    _human_response,
    _request_expired,
    _agent_message,
    _done,
    _paused,
    _resumed,
)
_BUILDERS: tuple[_Builder, ...] = (*_ONGOING * 4, _human_response, _human_response, _cancelled, _failed)
"""Responses are commoner and final events rarer, so sequences often settle requests before ending."""


@st.composite
def event_sequences(draw: st.DrawFn, max_size: int = 25, max_quorum: int = 1) -> list[Event]:
    """A trigger followed by up to ``max_size - 1`` events of any type; an approval request
    needs up to ``max_quorum`` approvals."""
    start = draw(
        st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
    )
    size = draw(st.integers(min_value=1, max_value=max_size))
    history = _History(max_quorum=max_quorum)
    events: list[Event] = []
    at = start
    for n in range(size):
        at += timedelta(seconds=draw(st.integers(min_value=0, max_value=3600)))
        build = _trigger if n == 0 else draw(st.sampled_from(_BUILDERS))
        events.append(build(draw, history, {"id": draw(ids), "at": at}))
    return events
