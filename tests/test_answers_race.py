"""Answers are atomic, and approvals don't travel to forks (invariants 6 and 7), on a real Redis."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agent.events import HumanRequest, HumanResponse, ToolCall
from agent.thread import Status
from bot.runtime import Runtime
from channels.gateway import Conflict
from tests.answering import advance_and_answer


def awaiting_approval(runtime: Runtime) -> tuple[str, str]:
    thread_id = runtime.launch("deploy", "ship the latest").thread.id
    asked = advance_and_answer(runtime, thread_id)
    assert asked is not None and asked.pending is not None
    return thread_id, asked.pending.request_id


def test_of_racing_approve_and_reject_exactly_one_is_accepted(runtime: Runtime) -> None:
    for _ in range(10):
        thread_id, request_id = awaiting_approval(runtime)
        barrier = threading.Barrier(2)

        def answer(
            approved: bool,
            thread_id: str = thread_id,
            request_id: str = request_id,
            barrier: threading.Barrier = barrier,
        ) -> str:
            barrier.wait()
            try:
                runtime.respond(thread_id, request_id, "alice", approved=approved)
            except Conflict as refused:
                return str(refused)
            return "accepted"

        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(answer, [True, False]))
        assert outcomes.count("accepted") == 1, outcomes
        (refusal,) = [o for o in outcomes if o != "accepted"]
        assert "already answered by alice" in refusal
        responses = [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]
        assert len(responses) == 1, "the refused answer is not stored"
        won = "approved" if responses[0].approved else "rejected"
        assert f"({won})" in refusal, "the refusal names the answer that won"


def test_a_fork_after_an_approval_asks_for_the_approval_again(runtime: Runtime, deploy_log: Path) -> None:
    thread_id, request_id = awaiting_approval(runtime)
    runtime.respond(thread_id, request_id, "alice", approved=True)
    done = advance_and_answer(runtime, thread_id)
    assert done is not None and done.status is Status.DONE
    assert len(deploy_log.read_text().splitlines()) == 1
    after_approval = 1 + next(i for i, e in enumerate(done.events) if isinstance(e, HumanResponse))

    copy = runtime.fork(thread_id, at=after_approval).thread
    assert copy.status is Status.AWAITING_HUMAN and copy.approved is None
    assert copy.pending is not None and copy.pending.kind == "approval"
    assert "Approvals do not carry over" in copy.pending.text
    waiting = advance_and_answer(runtime, copy.id)
    assert waiting is not None and waiting.status is Status.AWAITING_HUMAN
    assert len(deploy_log.read_text().splitlines()) == 1, "the fork did not deploy on the source's approval"

    runtime.respond(copy.id, copy.pending.request_id, "alice", approved=True)
    finished = advance_and_answer(runtime, copy.id)
    assert finished is not None and finished.status is Status.DONE
    assert len(deploy_log.read_text().splitlines()) == 2


def test_a_fork_in_the_middle_of_a_call_asks_before_running_it_again(
    runtime: Runtime, deploy_log: Path
) -> None:
    thread_id, request_id = awaiting_approval(runtime)
    runtime.respond(thread_id, request_id, "alice", approved=True)
    done = advance_and_answer(runtime, thread_id)
    assert done is not None
    mid_call = 1 + next(
        i for i, e in enumerate(done.events) if isinstance(e, ToolCall) and e.tool == "deploy"
    )

    copy = runtime.fork(thread_id, at=mid_call).thread
    assert copy.open_call is None and copy.pending is not None
    assert isinstance(copy.events[-1], HumanRequest) and copy.events[-1].call is not None
    assert copy.events[-1].call.tool == "deploy"
    assert len(deploy_log.read_text().splitlines()) == 1
