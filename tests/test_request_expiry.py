"""Deadlines on human requests, end to end: the scheduler's sweep with a clock the test sets,
the real store and Redis, threads advanced in process, deliveries through a channel.

The deploy agent's approvals wait an hour (``OUTERLOOP_REQUEST_TTL``); alice is reminded
once, then the request moves to carol; after that it times out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.events import RequestExpired, ToolCall
from agent.expiry import expire
from agent.thread import Status, Thread
from bot.commands.timeline import timeline
from bot.runtime import Runtime
from bot.settings import Settings
from bot.work.scheduler import Scheduler
from channels.gateway import NotAllowed
from tests.answering import advance_and_answer
from tests.channel_helpers import RecordingChannel, run_deliveries, said

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rt(settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Runtime]:
    for name, value in {
        "OUTERLOOP_APPROVERS": "alice",
        "OUTERLOOP_REQUEST_TTL": "3600",
        "OUTERLOOP_REQUEST_REMINDERS": "1",
        "OUTERLOOP_ESCALATION_APPROVERS": "carol",
    }.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime.from_settings(Settings())
    runtime.clock = clock
    yield runtime


@pytest.fixture
def channel(rt: Runtime) -> RecordingChannel:
    channel = RecordingChannel(interests=frozenset({"human_request", "request_expired", "done"}))
    rt.outbound["test"] = channel
    return channel


def waiting_for_approval(rt: Runtime) -> Thread:
    thread_id = rt.converse("test:r1", "deploy", said("ship the latest")).thread.id
    thread = advance_and_answer(rt, thread_id)
    rt.queue.empty()  # the launch's job, run just above
    assert thread is not None and thread.pending is not None and thread.pending.kind == "approval"
    return thread


def tick(rt: Runtime, clock: Clock, at: datetime) -> list[RequestExpired]:
    clock.now = at
    return Scheduler(rt).tick(at).expired


def test_an_approval_that_expires_is_escalated_and_resumes_when_the_second_group_answers(
    rt: Runtime, clock: Clock, channel: RecordingChannel, deploy_log: Path
) -> None:
    thread = waiting_for_approval(rt)
    assert thread.pending is not None and thread.pending.expires_at == T0 + HOUR
    request_id = thread.pending.request_id
    assert tick(rt, clock, T0 + HOUR - timedelta(seconds=1)) == []

    reminded = tick(rt, clock, T0 + HOUR)
    assert [(e.outcome, e.approvers) for e in reminded] == [("reminded", ("alice",))]
    assert tick(rt, clock, T0 + HOUR + timedelta(minutes=30)) == [], "the reminder waits an hour"

    escalated = tick(rt, clock, T0 + 2 * HOUR + timedelta(seconds=5))
    assert [(e.outcome, e.approvers) for e in escalated] == [("escalated", ("carol",))]
    shown = timeline(rt.load(thread.id))
    assert "escalated: asking carol until 2025-03-04 12:00 UTC" in shown
    assert "it expires at 2025-03-04 12:00 UTC" in shown
    run_deliveries(rt)
    assert [kind for kind, _ in channel.shown] == ["human_request", "request_expired", "request_expired"]

    with pytest.raises(NotAllowed, match="alice may not answer this request; approvers: carol"):
        rt.respond(thread.id, request_id, "alice", approved=True)
    rt.respond(thread.id, request_id, "carol", approved=True)
    done = advance_and_answer(rt, thread.id)
    assert done is not None and done.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.1.0", "staging"]
    assert rt.store.expiring(float("inf")) == [], "an answered request leaves the deadlines index"


def test_when_escalation_is_exhausted_the_request_times_out_and_the_agent_says_so(
    rt: Runtime, clock: Clock, channel: RecordingChannel, deploy_log: Path
) -> None:
    thread = waiting_for_approval(rt)
    outcomes = [e.outcome for at in (T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR) for e in tick(rt, clock, at)]
    assert outcomes == ["reminded", "escalated", "timed_out"]
    assert rt.load(thread.id).status is Status.RUNNING
    assert rt.queue.count == 1, "the time-out wakes the thread"

    done = advance_and_answer(rt, thread.id)
    assert done is not None and done.status is Status.DONE
    assert done.events[-1].type == "done"
    assert "Nobody answered in time, so I did not deploy." in done.events[-1].model_dump()["message"]
    assert not deploy_log.exists()
    assert not any(isinstance(e, ToolCall) and e.tool == "deploy" for e in done.events)
    run_deliveries(rt)
    assert [kind for kind, _ in channel.shown][-2:] == ["request_expired", "done"]


def test_an_answer_that_beats_the_sweep_makes_its_expiry_a_no_op(rt: Runtime, clock: Clock) -> None:
    loaded = waiting_for_approval(rt)  # what a sweep read just before the human answered
    assert loaded.pending is not None
    late = expire(loaded.pending, T0 + HOUR)
    rt.respond(loaded.id, loaded.pending.request_id, "alice", approved=True)

    assert rt.store.append_if_current(loaded, late) is None, "the compare-and-set sees the answer"
    appended = rt.store.append(loaded, late)  # even appended after it, reduce ignores the expiry
    assert appended.thread.approved == loaded.pending.call and appended.thread.pending is None
    assert tick(rt, clock, T0 + 5 * HOUR) == []


def test_two_schedulers_expire_a_deadline_once(rt: Runtime) -> None:
    thread = waiting_for_approval(rt)
    schedulers = [Scheduler(Runtime.from_settings(Settings())) for _ in range(2)]
    barrier = threading.Barrier(2)

    def sweep(scheduler: Scheduler) -> list[RequestExpired]:
        barrier.wait()
        return scheduler.tick(T0 + HOUR).expired

    with ThreadPoolExecutor(max_workers=2) as pool:
        expired = [event for events in pool.map(sweep, schedulers) for event in events]
    assert len(expired) == 1
    stored = [e for e in rt.load(thread.id).events if isinstance(e, RequestExpired)]
    assert stored == expired


def test_a_paused_threads_request_expires_only_after_it_is_resumed(rt: Runtime, clock: Clock) -> None:
    thread = waiting_for_approval(rt)
    rt.pause(thread.id, "alice", "holiday")
    assert tick(rt, clock, T0 + 2 * HOUR) == []
    rt.resume(thread.id, "alice")
    assert [e.outcome for e in tick(rt, clock, T0 + 2 * HOUR + timedelta(seconds=1))] == ["reminded"]


def test_requests_without_a_time_limit_are_not_indexed(runtime: Runtime) -> None:
    thread_id = runtime.launch("deploy", "ship the latest").thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None and thread.pending.expires_at is None
    assert runtime.store.expiring(float("inf")) == []


def test_a_cancelled_threads_request_leaves_the_deadlines_index(rt: Runtime, clock: Clock) -> None:
    thread = waiting_for_approval(rt)
    assert rt.store.expiring(float("inf")) == [thread.id]
    rt.cancel(thread.id, "alice")
    assert rt.store.expiring(float("inf")) == []
    assert tick(rt, clock, T0 + 5 * HOUR) == []
