"""Time limits on human requests in the kernel: deadlines, reminders, escalation, time-out.

A controllable clock (``Clock``) stands in for "now"; everything else is the real loop
and the real ``reduce``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.events import Expiry, HumanRequest, HumanResponse, RequestExpired
from agent.expiry import expire, is_due
from agent.loop import advance
from agent.scripted_model import SequenceModel
from agent.thread import Status, Thread, reduce, without_ignored_responses
from agent.tools import Policy
from tests.kernel_helpers import APPROVER, START, CountingTool, Launch, call, make_spec, started

BOSS = "carol"
HOUR = timedelta(hours=1)
PLAN = Expiry(wait=HOUR, reminders=1, escalate_to=(BOSS,))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now


@pytest.fixture
def launch() -> CountingTool:
    return CountingTool("launch", Policy(needs_approval=True, expiry=PLAN), Launch)


def waiting(tmp_path: Path, launch: CountingTool, clock: Clock) -> Thread:
    """A thread waiting on the approval of ``launch(target=alpha)``, asked at ``clock.now``."""
    spec = make_spec(tmp_path, launch)
    thread = advance(started(), spec, SequenceModel([call("launch", target="alpha")]), clock=clock)
    assert thread.pending is not None
    return thread


def expired(thread: Thread, now: datetime) -> Thread:
    assert thread.pending is not None and is_due(thread.pending, now)
    return reduce(thread, expire(thread.pending, now))


def test_the_loop_stamps_the_deadline_from_its_clock_and_the_tools_policy(
    tmp_path: Path, launch: CountingTool
) -> None:
    thread = waiting(tmp_path, launch, Clock())
    assert thread.pending is not None
    assert thread.pending.expires_at == START + HOUR
    assert thread.pending.expiry == PLAN
    assert not is_due(thread.pending, START + HOUR - timedelta(seconds=1))
    assert is_due(thread.pending, START + HOUR)


def test_questions_take_the_agents_expiry_and_requests_without_one_never_expire(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    ask = SequenceModel([call("request_human_input", question="which one?")])
    plain = advance(started(), spec, ask)
    assert plain.pending is not None and plain.pending.expires_at is None
    assert not is_due(plain.pending, START + 1000 * HOUR)

    timed = replace(spec, expiry=Expiry(wait=2 * HOUR))
    ask = SequenceModel([call("request_human_input", question="which one?")])
    thread = advance(started(), timed, ask, clock=Clock())
    assert thread.pending is not None and thread.pending.expires_at == START + 2 * HOUR


def test_an_expired_request_reminds_then_escalates_then_times_out(
    tmp_path: Path, launch: CountingTool
) -> None:
    clock = Clock()
    thread = waiting(tmp_path, launch, clock)
    request_id = thread.pending.request_id if thread.pending else ""

    thread = expired(thread, clock.advance(HOUR))
    assert thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None and thread.pending.request_id == request_id
    assert (thread.pending.approvers, thread.pending.stage) == ((APPROVER,), 1)
    assert thread.pending.expires_at == clock.now + HOUR, "a reminder gets a full wait of its own"

    thread = expired(thread, clock.advance(HOUR + timedelta(minutes=5)))
    assert thread.pending is not None and thread.pending.approvers == (BOSS,)
    assert thread.request(request_id) == thread.pending, "the request as it stands, not as first recorded"

    thread = expired(thread, clock.advance(HOUR))
    assert (thread.status, thread.pending, thread.approved) == (Status.RUNNING, None, None)
    outcomes = [e.outcome for e in thread.events if isinstance(e, RequestExpired)]
    assert outcomes == ["reminded", "escalated", "timed_out"]
    assert launch.calls == []


def test_after_escalation_only_the_second_group_can_approve(tmp_path: Path, launch: CountingTool) -> None:
    clock = Clock()
    thread = waiting(tmp_path, launch, clock)
    thread = expired(expired(thread, clock.advance(HOUR)), clock.advance(HOUR))
    assert thread.pending is not None and thread.pending.approvers == (BOSS,)
    request_id = thread.pending.request_id

    too_late = reduce(thread, HumanResponse(request_id=request_id, responder=APPROVER, approved=True))
    assert too_late.pending == thread.pending and too_late.approved is None

    spec = make_spec(tmp_path, launch)
    approved = reduce(too_late, HumanResponse(request_id=request_id, responder=BOSS, approved=True))
    done = advance(approved, spec, SequenceModel([call("done_for_now", message="launched")]))
    assert [c.model_dump() for c in launch.calls] == [{"target": "alpha"}]
    assert done.status is Status.DONE


def test_an_expiry_that_lost_the_race_with_an_answer_changes_nothing(
    tmp_path: Path, launch: CountingTool
) -> None:
    clock = Clock()
    thread = waiting(tmp_path, launch, clock)
    assert thread.pending is not None
    late = expire(thread.pending, clock.advance(HOUR))  # decided on the thread as it was loaded
    answered = reduce(thread, HumanResponse(request_id=late.request_id, responder=APPROVER, approved=True))

    after = reduce(answered, late)
    unchanged = answered.model_dump(exclude={"events"})
    assert after.model_dump(exclude={"events"}) == {**unchanged, "ignored": answered.ignored | {late.id}}
    assert late not in without_ignored_responses(after), "the model never sees it"


def test_a_second_expiry_of_the_same_deadline_changes_nothing(tmp_path: Path, launch: CountingTool) -> None:
    clock = Clock()
    thread = waiting(tmp_path, launch, clock)
    assert thread.pending is not None
    first = expire(thread.pending, clock.advance(HOUR))
    second = expire(thread.pending, clock.advance(timedelta(seconds=3)))  # another scheduler's sweep
    once = reduce(thread, first)
    twice = reduce(once, second)
    assert twice.pending == once.pending
    assert once.pending is not None and once.pending.stage == 1


def test_the_model_is_told_when_a_request_timed_out(tmp_path: Path) -> None:
    launch = CountingTool("launch", Policy(needs_approval=True, expiry=Expiry(wait=HOUR)), Launch)
    clock = Clock()
    thread = expired(waiting(tmp_path, launch, clock), clock.advance(HOUR))
    assert thread.status is Status.RUNNING
    model = SequenceModel([call("done_for_now", message="nobody approved; not launching")])
    done = advance(thread, make_spec(tmp_path, launch), model)
    assert '<request_expired outcome="timed_out">Nobody answered in time.' in model.requests[0].context
    assert done.status is Status.DONE and launch.calls == []


def test_expiring_a_request_without_a_deadline_is_a_clear_error() -> None:
    request = HumanRequest(request_id="r1", kind="question", text="?")
    with pytest.raises(ValueError, match="request r1 has no deadline"):
        expire(request, START)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(("expire", "stale", APPROVER, BOSS)), max_size=8))
def test_only_whoever_is_asked_at_the_time_can_settle_the_request(actions: list[str]) -> None:
    request = HumanRequest(
        request_id="r1", kind="question", text="?", approvers=(APPROVER,), expiry=PLAN, expires_at=START
    )
    thread = reduce(started(), request)
    now = START
    for action in actions:
        pending = thread.pending
        if pending is None:
            break
        if action in ("expire", "stale"):
            now = max(now, pending.expires_at or now)
            event = expire(pending, now)
            if action == "stale":
                event = event.model_copy(update={"deadline": now - timedelta(seconds=1)})
            after = reduce(thread, event)
            assert (after.pending == pending) is (action == "stale")
        else:
            after = reduce(thread, HumanResponse(request_id="r1", responder=action, answer="yes"))
            assert (after.pending is None) is (action in pending.approvers)
        thread = after
