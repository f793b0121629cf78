"""Steps that run nothing are taken where the event before them was recorded, never racing a worker.

A launch records the thread's model request and posts it to the callers; a caller records
``done`` or a human request after the answer that decided it. No advance job is queued for
either, and such a step lands only on the thread as it was read while no worker holds it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from agent.events import Origin, Trigger
from agent.thread import Status
from bot.model import queue as model_queue
from bot.model.caller import Caller
from bot.runtime import Runtime
from bot.state.liveness import Holder
from bot.state.lock import ThreadLock
from bot.state.store import key
from bot.work.worker import advance_thread


def trigger(text: str) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="test", sender="tester"))


def jobs_queued(rt: Runtime) -> int:
    return int(rt.queue.count)


def answer_waiting(rt: Runtime) -> int:
    return asyncio.run(Caller(rt).answer_waiting())


def test_a_launch_asks_the_model_without_a_worker(runtime: Runtime) -> None:
    thread = runtime.launch("notes", "write this down").thread
    stored = runtime.load(thread.id)
    assert [e.type for e in stored.events] == ["trigger", "model_requested"]
    assert stored.deciding is not None and model_queue.is_waiting(runtime.connection, thread.id)
    assert jobs_queued(runtime) == 0


def test_a_thread_runs_its_tool_in_a_worker_and_finishes_in_the_caller(runtime: Runtime) -> None:
    thread_id = runtime.launch("notes", "write this down").thread.id
    assert answer_waiting(runtime) == 1  # note: a tool, so a worker is woken
    assert jobs_queued(runtime) == 1
    runtime.queue.empty()  # the job is run here, in-process
    ran = advance_thread(runtime, thread_id)
    assert ran is not None and ran.deciding is not None and jobs_queued(runtime) == 0
    assert answer_waiting(runtime) == 1  # done_for_now: recorded by the caller
    done = runtime.load(thread_id)
    assert done.status is Status.DONE and done.events[-1].type == "done"
    assert jobs_queued(runtime) == 0, "no worker woken to record done"
    assert [e.type for e in done.events] == [
        "trigger",
        "model_requested",
        "model_decided",
        "tool_call",
        "tool_result",
        "model_requested",
        "model_decided",
        "done",
    ]


def test_no_step_is_taken_while_a_worker_holds_the_thread(runtime: Runtime) -> None:
    thread = runtime.store.create("held", "notes", trigger("write this down")).thread
    lock = ThreadLock(runtime.connection, thread.id, Holder.here(), ttl=30)
    assert lock.acquire()
    runtime.wake(thread)
    assert [e.type for e in runtime.load(thread.id).events] == ["trigger"], "the holder's step"
    assert runtime.connection.exists(key("queued", thread.id)), "a job for when it lets go"
    lock.release_or_continue()

    asked = advance_thread(runtime, thread.id)
    assert asked is not None and [e.type for e in asked.events] == ["trigger", "model_requested"]


def test_a_step_decided_on_a_thread_that_moved_on_is_left_to_a_worker(runtime: Runtime) -> None:
    stale = runtime.store.create("moved", "notes", trigger("write this down")).thread
    runtime.store.append(stale, trigger("and this too"))
    assert runtime.step_here(stale) is stale
    assert [e.type for e in runtime.load(stale.id).events] == ["trigger", "trigger"]


def test_racing_steps_on_one_thread_record_one_request(runtime: Runtime) -> None:
    thread = runtime.store.create("raced", "notes", trigger("write this down")).thread
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: runtime.wake(thread), range(8)))
    stored = runtime.load(thread.id)
    assert [e.type for e in stored.events] == ["trigger", "model_requested"]
    assert model_queue.waiting(runtime.connection) == 1
