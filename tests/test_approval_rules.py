"""Invariant 6 as properties of the pure fold: whatever events arrive, in whatever order, a
needs-approval call is approved only with its quorum of distinct allowed people who did not
ask for it, for exactly the arguments they saw, or under a live standing approval in scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.approvals import call_digest, digest, grant_covers, may_answer, requesters
from agent.events import (
    Event,
    Forked,
    Grant,
    GrantRevoked,
    HumanRequest,
    HumanResponse,
    Origin,
    ProposedCall,
    Trigger,
)
from agent.thread import Thread, reduce, replay
from agent.tools import Policy

PEOPLE = ("alice", "bob", "carol", "rita")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CALL = ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1"})
EDIT = {"tag": "v2"}
thorough = settings(max_examples=300, deadline=None)


def grant(scope: str, by: str, thread: str = "t1", hours: int = 1) -> Grant:
    return Grant(
        grant_id=f"g-{scope}-{by}-{thread}",
        scope=scope,  # type: ignore[arg-type]
        agent="test",
        tool="deploy",
        thread=thread,
        by=by,
        digest=call_digest(CALL) if scope == "call" else None,
        until=T0 + timedelta(hours=hours),
    )


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    """A trigger, two requests for the same call, and a jumble of answers, grants and revocations."""
    at = st.integers(0, 120).map(lambda minutes: T0 + timedelta(minutes=minutes))
    person = st.sampled_from(PEOPLE)
    grants = st.builds(
        grant, st.sampled_from(("thread", "call", "tool")), person, st.sampled_from(("t1", "t0"))
    )
    request = st.builds(
        HumanRequest,
        request_id=st.sampled_from(("r1", "r2")),
        kind=st.just("approval"),
        text=st.just("ok?"),
        call=st.just(CALL),
        approvers=st.lists(person, unique=True, max_size=3).map(tuple),
        quorum=st.integers(1, 3),
        excluded=st.lists(person, unique=True, max_size=2).map(tuple),
        standing=st.booleans(),
        at=at,
    )
    response = st.builds(
        HumanResponse,
        request_id=st.sampled_from(("r1", "r2")),
        responder=person,
        approved=st.sampled_from((True, True, True, False)),
        digest=st.sampled_from((None, call_digest(CALL), digest("deploy", EDIT), "bogus")),
        arguments=st.none() | st.just(EDIT),
        gives=st.none() | grants,
        under=st.none() | grants,
        via=st.none() | person,
        at=at,
    )
    others = st.one_of(
        st.builds(
            Trigger, text=st.just("go"), origin=st.builds(Origin, channel=st.just("cli"), sender=person)
        ),
        st.builds(GrantRevoked, grant_id=grants.map(lambda g: g.grant_id), by=person),
        st.builds(Forked, source=st.just("t0"), kept=st.just(1)),
    )
    body = draw(st.lists(st.one_of(request, response, response, others), max_size=14))
    first = Trigger(text="go", origin=Origin(channel="cli", sender="rita"), at=T0)
    return [first, *draw(st.permutations(body))]


def justified(before: Thread, response: HumanResponse, approved: ProposedCall) -> bool:
    """An oracle written apart from ``reduce``: may ``response`` complete the approval of ``approved``?"""
    pending = before.pending
    if pending is None or pending.request_id != response.request_id or pending.call is None:
        return False
    if response.approved is not True or not may_answer(pending, response.responder, response.via):
        return False
    if response.responder.casefold() in {p.casefold() for p in pending.excluded}:
        return False
    if response.digest not in (None, call_digest(pending.call)):
        return False
    if response.under is not None:
        g = response.under
        given_here = g.thread == before.id and _given_and_live(before, g)
        elsewhere = g.scope == "tool" and g.thread != before.id
        return (
            g.by == response.responder
            and grant_covers(g, pending, "test", response.at)
            and (given_here or elsewhere)
        )
    if response.arguments is not None and response.arguments != pending.call.arguments:
        return pending.quorum == 1 and approved.arguments == response.arguments
    others = set(before.approvals) - {response.responder}
    return len(others) + 1 >= pending.quorum and approved == pending.call


def _given_and_live(thread: Thread, g: Grant) -> bool:
    """Given by a heeded approval in this thread (after its last fork) and not revoked since."""
    live = False
    for event in thread.events:
        if isinstance(event, Forked):
            live = False
        elif isinstance(event, HumanResponse) and event.gives == g and event.id not in thread.ignored:
            live = True
        elif isinstance(event, GrantRevoked) and event.grant_id == g.grant_id:
            live = False
    return live


@thorough
@given(events())
def test_no_call_is_approved_without_its_quorum_scope_and_allowed_people(sequence: list[Event]) -> None:
    thread = Thread(id="t1", agent="test")
    for event in sequence:
        before, thread = thread, reduce(thread, event)
        if thread.approved is not None and thread.approved != before.approved:
            assert isinstance(event, HumanResponse), f"{event.type} approved a call"
            assert justified(before, event, thread.approved), event


@thorough
@given(events())
def test_approvals_short_of_the_quorum_are_distinct_allowed_people(sequence: list[Event]) -> None:
    thread = replay("t1", "test", sequence)
    pending = thread.pending
    assert len(set(thread.approvals)) == len(thread.approvals)
    if pending is not None:
        assert len(thread.approvals) < pending.quorum
        assert all(may_answer(pending, p) or True for p in thread.approvals)
        assert not {p.casefold() for p in thread.approvals} & {p.casefold() for p in pending.excluded}


def answer(request_id: str, responder: str, **fields: Any) -> HumanResponse:
    return HumanResponse(request_id=request_id, responder=responder, approved=True, at=T0, **fields)


def asked(**fields: Any) -> list[Event]:
    first = Trigger(text="go", origin=Origin(channel="cli", sender="rita"), at=T0)
    request = HumanRequest(request_id="r1", kind="approval", text="ok?", call=CALL, at=T0, **fields)
    return [first, request]


def test_two_distinct_approvers_are_needed_when_the_quorum_is_two() -> None:
    thread = replay("t1", "test", [*asked(quorum=2), answer("r1", "alice"), answer("r1", "alice")])
    assert thread.approved is None and thread.approvals == ("alice",)
    assert reduce(thread, answer("r1", "bob")).approved == CALL


def test_a_reject_from_any_approver_rejects_a_partly_approved_call() -> None:
    thread = replay("t1", "test", [*asked(quorum=2), answer("r1", "alice")])
    rejected = reduce(thread, HumanResponse(request_id="r1", responder="bob", approved=False))
    assert rejected.pending is None and rejected.approved is None


def test_the_requester_may_not_approve_but_may_withdraw() -> None:
    thread = replay("t1", "test", asked(excluded=requesters(asked()[:1])))
    assert reduce(thread, answer("r1", "RITA")).pending is not None
    assert reduce(thread, HumanResponse(request_id="r1", responder="rita", approved=False)).pending is None


def test_an_approval_of_other_arguments_than_those_pending_changes_nothing() -> None:
    thread = replay("t1", "test", asked())
    assert reduce(thread, answer("r1", "alice", digest=digest("deploy", EDIT))).pending is not None


def test_an_edit_resets_the_approvals_given_to_the_old_arguments() -> None:
    thread = replay(
        "t1", "test", [*asked(quorum=2), answer("r1", "alice"), answer("r1", "bob", arguments=EDIT)]
    )
    assert thread.approvals == ("bob",) and thread.pending is not None
    assert thread.pending.call is not None and thread.pending.call.arguments == EDIT
    stale = reduce(thread, answer("r1", "alice", digest=call_digest(CALL)))
    assert stale.approved is None
    done = reduce(thread, answer("r1", "alice", digest=digest("deploy", EDIT)))
    assert done.approved == CALL.model_copy(update={"arguments": EDIT})


def test_a_thread_grant_covers_later_calls_in_the_thread_until_revoked() -> None:
    given = grant("thread", "alice")
    first = [*asked(standing=True), answer("r1", "alice", gives=given)]
    thread = replay("t1", "test", first)
    assert thread.grants == (given,)
    again = HumanRequest(request_id="r2", kind="approval", text="ok?", call=CALL, standing=True, at=T0)
    stood = answer("r2", "alice", under=given, channel="grant")
    assert reduce(reduce(thread, again), stood).approved == CALL
    revoked = reduce(reduce(thread, GrantRevoked(grant_id=given.grant_id, by="bob")), again)
    assert reduce(revoked, stood).pending == again, "the request still waits for a person"


def test_a_grant_does_not_travel_to_a_fork() -> None:
    given = grant("thread", "alice")
    events = [*asked(standing=True), answer("r1", "alice", gives=given)]
    again = HumanRequest(request_id="r2", kind="approval", text="ok?", call=CALL, standing=True, at=T0)
    copy = replay("t2", "test", [*events, Forked(source="t1", kept=3), again])
    assert copy.grants == ()
    assert reduce(copy, answer("r2", "alice", under=given)).pending == again


def test_a_grant_does_not_cover_a_call_after_its_end_or_without_a_standing_policy() -> None:
    given = grant("tool", "alice", thread="t0")
    late = answer("r1", "alice", under=given).model_copy(update={"at": T0 + timedelta(hours=2)})
    assert replay("t1", "test", [*asked(standing=True), late]).approved is None
    assert replay("t1", "test", [*asked(standing=False), answer("r1", "alice", under=given)]).approved is None
    assert replay("t1", "test", [*asked(standing=True), answer("r1", "alice", under=given)]).approved == CALL


def test_a_policy_refuses_standing_approvals_with_a_quorum() -> None:
    try:
        Policy(needs_approval=True, standing=True, min_approvals=2)
    except ValueError as exc:
        assert "min_approvals=1" in str(exc)
    else:
        raise AssertionError("a standing policy with a quorum was accepted")
