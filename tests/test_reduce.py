"""The pure fold: determinism, serialization, replay and fork, status derivation, who may answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.events import (
    AgentMessage,
    Cancelled,
    Context,
    Done,
    Error,
    Event,
    Failed,
    HumanRequest,
    HumanResponse,
    ModelDecided,
    ModelRequested,
    Paused,
    ProposedCall,
    RequestExpired,
    Resumed,
    ToolCall,
    ToolResult,
    Trigger,
)
from agent.thread import Status, Thread, fork, reduce, replay, without_ignored_responses
from tests.kernel_helpers import APPROVER, STRANGER, trigger
from tests.strategies import event_sequences, people

fast = settings(max_examples=60, deadline=None)


def derived(thread: Thread) -> dict[str, Any]:
    """Everything ``reduce`` derives, i.e. the thread without its event log."""
    return thread.model_dump(exclude={"events"})


def answers(thread: Thread) -> dict[str, Any]:
    """Everything a thread tells: its fields, its events, and what its lookups find."""
    requests = {"no-such-request"} | {
        e.request_id for e in thread.events if isinstance(e, HumanRequest | HumanResponse | RequestExpired)
    }
    return {
        **derived(thread),
        "events": tuple(thread.events),
        "trigger": thread.trigger,
        "requests": {r: thread.request(r) for r in requests},
        "responses": {r: thread.response_to(r) for r in requests},
        "shown": without_ignored_responses(thread),
    }


def ignored_by(thread: Thread, event: Event) -> bool:
    """Whether ``reduce`` records ``event`` as ignored and changes nothing else."""
    after = reduce(thread, event)
    return derived(after) == {**derived(thread), "ignored": thread.ignored | {event.id}}


def fold(events: list[Event]) -> Thread:
    return replay("t1", "test", events)


@fast
@given(event_sequences())
def test_folding_the_same_events_twice_gives_equal_threads(events: list[Event]) -> None:
    assert fold(events) == fold(events)


@fast
@given(event_sequences())
def test_json_round_trip_gives_an_equal_thread(events: list[Event]) -> None:
    thread = fold(events)
    assert Thread.from_json(thread.to_json()) == thread


@fast
@given(event_sequences())
def test_replay_equals_folding_one_event_at_a_time(events: list[Event]) -> None:
    thread = Thread(id="t1", agent="test")
    for n, event in enumerate(events, start=1):
        thread = reduce(thread, event)
        assert thread == fold(events[:n])


@fast
@given(event_sequences(), st.data())
def test_fork_equals_replaying_the_first_events(events: list[Event], data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(events)))
    forked = fork(fold(events), at=at, new_id="t2")
    assert forked == replay("t2", "test", events[:at])


@pytest.mark.parametrize("at", [-1, 3])
def test_fork_out_of_range_raises_a_clear_error(at: int) -> None:
    thread = fold([trigger(), AgentMessage(text="hi")])
    with pytest.raises(ValueError, match=rf"cannot fork thread t1 at event {at}: it has 2 events"):
        fork(thread, at=at, new_id="t2")


CALL = ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1"})
ASK = HumanRequest(request_id="r1", kind="approval", text="Approve?", call=CALL, approvers=(APPROVER,))
QUESTION = HumanRequest(request_id="r2", kind="question", text="Which one?", approvers=(APPROVER,))
APPROVE = HumanResponse(request_id="r1", responder=APPROVER, approved=True)
REJECT = HumanResponse(request_id="r1", responder=APPROVER, approved=False, comment="not now")
ANSWER = HumanResponse(request_id="r2", responder=APPROVER, answer="the first", approved=True)
RUN = ToolCall(call_id="c1", tool="deploy", arguments={"tag": "v1"})
RESULT = ToolResult(call_id="c1", tool="deploy", output="ok")
FAILURE = Error(source="tool", tool="deploy", call_id="c1", message="boom")
MODEL_ERROR = Error(source="model", message="no tool call")
PAUSE = Paused(by=APPROVER)
RESUME = Resumed(by=APPROVER)
START = trigger()

DERIVATIONS: list[tuple[str, list[Event], dict[str, Any]]] = [
    ("nothing yet", [], {"status": Status.NEW}),
    ("trigger starts", [START], {"status": Status.RUNNING}),
    ("request waits", [START, ASK], {"status": Status.AWAITING_HUMAN, "pending": ASK}),
    ("approval", [START, ASK, APPROVE], {"status": Status.RUNNING, "pending": None, "approved": CALL}),
    ("rejection", [START, ASK, REJECT], {"status": Status.RUNNING, "pending": None, "approved": None}),
    ("answer approves nothing", [START, QUESTION, ANSWER], {"status": Status.RUNNING, "approved": None}),
    ("wrong request id", [START, QUESTION, APPROVE], {"status": Status.AWAITING_HUMAN, "pending": QUESTION}),
    ("approved call runs", [START, ASK, APPROVE, RUN], {"approved": None, "open_call": RUN}),
    ("result closes the call", [START, RUN, RESULT], {"open_call": None, "consecutive_errors": 0}),
    ("other result", [START, RUN, RESULT.model_copy(update={"call_id": "c9"})], {"open_call": RUN}),
    ("error closes the call", [START, RUN, FAILURE], {"open_call": None, "consecutive_errors": 1}),
    ("errors count", [START, RUN, FAILURE, MODEL_ERROR], {"status": Status.RUNNING, "consecutive_errors": 2}),
    ("result resets errors", [START, MODEL_ERROR, RUN, RESULT], {"consecutive_errors": 0}),
    (
        "late result changes nothing",
        [START, RUN, FAILURE, RESULT],
        {"open_call": None, "consecutive_errors": 1},
    ),
    ("stray error changes nothing", [START, FAILURE], {"consecutive_errors": 0}),
    ("answer resets errors", [START, FAILURE, QUESTION, ANSWER], {"consecutive_errors": 0}),
    ("context and messages", [START, Context(name="n", content="c"), AgentMessage(text="hi")], {}),
    ("done", [START, ASK, APPROVE, Done(message="ok")], {"status": Status.DONE, "approved": None}),
    ("done ends the wait", [START, ASK, Done(message="ok")], {"status": Status.DONE, "pending": None}),
    ("trigger reopens", [START, Done(message="ok"), trigger("more")], {"status": Status.RUNNING}),
    ("done resets errors", [START, MODEL_ERROR, Done(message="ok")], {"consecutive_errors": 0}),
    ("pause", [START, PAUSE], {"status": Status.PAUSED, "paused": True}),
    ("resume", [START, PAUSE, RESUME], {"status": Status.RUNNING, "paused": False}),
    ("pause while waiting", [START, ASK, PAUSE], {"status": Status.PAUSED, "pending": ASK}),
    ("resume while waiting", [START, ASK, PAUSE, RESUME], {"status": Status.AWAITING_HUMAN}),
    ("answer while paused", [START, ASK, PAUSE, APPROVE], {"status": Status.PAUSED, "approved": CALL}),
    ("cancelled", [START, ASK, Cancelled(by=APPROVER)], {"status": Status.CANCELLED, "pending": None}),
    ("failed", [START, Failed(reason="redis gone")], {"status": Status.FAILED}),
]


@pytest.mark.parametrize(
    ("events", "expected"), [c[1:] for c in DERIVATIONS], ids=[c[0] for c in DERIVATIONS]
)
def test_status_and_fields_are_derived_from_events(events: list[Event], expected: dict[str, Any]) -> None:
    thread = fold(events)
    assert thread.events == tuple(events)
    assert {name: getattr(thread, name) for name in expected} == expected


@fast
@given(
    event_sequences(max_size=8),
    st.sampled_from([Cancelled(by=APPROVER), Failed(reason="gave up")]),
    event_sequences(max_size=12),
)
def test_cancelled_and_failed_are_final(events: list[Event], final: Event, later: list[Event]) -> None:
    ended = fold([*events, final])
    thread = fold([*events, final, *later])
    assert ended.status in (Status.CANCELLED, Status.FAILED)
    answers = {e.id for e in later if isinstance(e, HumanResponse | RequestExpired)}
    assert derived(thread) == {**derived(ended), "ignored": ended.ignored | answers}
    assert thread.events == (*events, final, *later)


@fast
@given(event_sequences(), people, st.none() | st.booleans())
def test_a_response_to_an_unknown_request_changes_nothing(
    events: list[Event], responder: str, approved: bool | None
) -> None:
    thread = fold(events)
    response = HumanResponse(request_id="no-such-request", responder=responder, approved=approved)
    assert ignored_by(thread, response)


@fast
@given(event_sequences(), st.none() | st.booleans())
def test_a_response_from_a_non_approver_changes_nothing(events: list[Event], approved: bool | None) -> None:
    thread = fold([*events, ASK])
    response = HumanResponse(request_id=ASK.request_id, responder=STRANGER, approved=approved)
    assert ignored_by(thread, response)


def test_a_second_response_to_an_answered_request_changes_nothing() -> None:
    thread = fold([START, ASK, REJECT])
    again = HumanResponse(request_id=ASK.request_id, responder=APPROVER, approved=True)
    assert ignored_by(thread, again)


def test_a_response_via_a_listed_approver_entry_settles_the_request() -> None:
    group_ask = ASK.model_copy(update={"approvers": ("S-ops",)})
    member = HumanResponse(request_id=ASK.request_id, responder=STRANGER, approved=True, via="S-ops")
    thread = fold([START, group_ask, member])
    assert thread.pending is None and thread.approved == CALL
    assert thread.response_to(ASK.request_id) == member


def test_a_response_via_an_entry_the_request_does_not_list_changes_nothing() -> None:
    thread = fold([START, ASK])
    claimed = HumanResponse(request_id=ASK.request_id, responder=STRANGER, approved=True, via="S-other")
    assert ignored_by(thread, claimed)


def test_anyone_may_answer_a_request_without_approvers() -> None:
    open_question = QUESTION.model_copy(update={"approvers": ()})
    thread = fold([START, open_question, ANSWER.model_copy(update={"responder": STRANGER})])
    assert thread.status is Status.RUNNING


def test_response_to_reports_who_settled_a_request() -> None:
    ignored = HumanResponse(request_id=ASK.request_id, responder=STRANGER, approved=True)
    thread = fold([START, ASK, ignored, REJECT, APPROVE, QUESTION])
    assert thread.response_to(ASK.request_id) == REJECT
    assert thread.response_to(QUESTION.request_id) is None
    assert thread.response_to("no-such-request") is None


@fast
@given(event_sequences(), event_sequences(max_size=10), event_sequences(max_size=10), st.data())
def test_different_events_folded_onto_the_same_thread_give_independent_threads(
    events: list[Event], first: list[Event], second: list[Event], data: st.DataObject
) -> None:
    # Two branches grow from one thread in an interleaved order, as a fork or a retried
    # append does: neither may see the other's events, nor change the thread they share.
    base = fold(events)
    before = answers(base)
    branches = {"first": base, "second": base}
    todo = {"first": list(first), "second": list(second)}
    while todo["first"] or todo["second"]:
        name = data.draw(st.sampled_from([name for name, left in todo.items() if left]))
        branches[name] = reduce(branches[name], todo[name].pop(0))
    assert answers(base) == before
    assert answers(branches["first"]) == answers(fold([*events, *first]))
    assert answers(branches["second"]) == answers(fold([*events, *second]))


@fast
@given(event_sequences())
def test_lookups_find_what_a_scan_of_the_events_finds(events: list[Event]) -> None:
    events = [event.model_copy(update={"id": f"e{n}"}) for n, event in enumerate(events)]
    ignored = set()
    thread = Thread(id="t1", agent="test")
    for event in events:
        after = reduce(thread, event)
        if isinstance(event, HumanResponse | RequestExpired) and unchanged(thread, after):
            ignored.add(event.id)
        thread = after
    assert thread.ignored == ignored
    assert thread.trigger == next((e for e in events if isinstance(e, Trigger)), None)
    assert without_ignored_responses(thread) == [e for e in events if e.id not in ignored]
    assert list(thread.events.heeded_reversed()) == [e for e in reversed(events) if e.id not in ignored]
    for request_id in answers(thread)["requests"]:
        recorded = (e for e in events if isinstance(e, HumanRequest) and e.request_id == request_id)
        pending = thread.pending if thread.pending and thread.pending.request_id == request_id else None
        assert thread.request(request_id) == (pending or next(recorded, None))
        settled = (
            e
            for e in events
            if isinstance(e, HumanResponse) and e.request_id == request_id and e.id not in ignored
        )
        assert thread.response_to(request_id) == next(settled, None)


def unchanged(before: Thread, after: Thread) -> bool:
    """Whether folding an event changed none of the fields ``reduce`` derives (bar ``ignored``)."""
    return derived(after) | {"ignored": None} == derived(before) | {"ignored": None}


def test_a_thread_that_asked_the_model_waits_for_that_answer_and_the_answer_is_used_once() -> None:
    asked = reduce(
        reduce(Thread(id="t", agent="a"), trigger("hi")),
        ModelRequested(request_id="r1", agent="a", version="v", basis=1),
    )
    assert asked.status is Status.RUNNING and not asked.runnable

    other = ModelDecided(request_id="r0", basis=1, tool="done_for_now", arguments={}, model="m")
    assert reduce(asked, other).deciding == asked.deciding, "an answer to another request changes nothing"

    answer = ModelDecided(request_id="r1", basis=1, tool="done_for_now", arguments={}, model="m")
    decided = reduce(asked, answer)
    assert decided.runnable and decided.decided == answer and decided.deciding is None
    assert reduce(decided, answer).decided == answer, (
        "a second copy of the answer is kept but changes nothing"
    )

    finished = reduce(decided, Done(message="ok", basis=1))
    assert finished.decided is None and finished.status is Status.DONE


def test_a_model_error_closes_the_request_and_counts_as_an_error() -> None:
    asked = reduce(
        reduce(Thread(id="t", agent="a"), trigger("hi")),
        ModelRequested(request_id="r1", agent="a", version="v", basis=1),
    )
    failed = reduce(asked, Error(source="model", message="529", request_id="r1"))
    assert failed.runnable and failed.consecutive_errors == 1 and failed.decided is None
