"""Fenced writes and a lock that survives (invariant 4), against real redis-servers.

Each test breaks the lock the way production does: another holder takes it, Redis goes away
for longer than the TTL, a holder's process is gone. What is checked is the log: what was
written, and by whom.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from agent.events import AgentMessage, Origin, ToolCall, ToolResult, Trigger
from agent.thread import Status
from bot.runtime import Runtime
from bot.state import liveness
from bot.state.liveness import Holder
from bot.state.lock import ThreadLock
from bot.state.store import LockLost, Store, key
from tests.answering import advance_and_answer
from tests.services import RedisServer, wait_for


def trigger(text: str) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="test", sender="tester"))


def stolen(lock: ThreadLock, by: Holder) -> None:
    """Another worker takes the lock, as after the TTL ran out: the fence number moves on."""
    lock.redis.set(key("lock", lock.thread_id), str(by))
    lock.redis.incr(key("fence", lock.thread_id))


@pytest.fixture
def store(redis_url: str) -> Store:
    return Store(redis.Redis.from_url(redis_url))


def test_an_append_fenced_by_a_lock_that_moved_on_writes_nothing(store: Store) -> None:
    thread = store.create("t1", "deploy", trigger("start")).thread
    lock = ThreadLock(store.redis, "t1", Holder.here(), ttl=30)
    assert lock.acquire()
    assert store.append(thread, AgentMessage(text="mine"), fence=lock.value).applied
    stolen(lock, Holder.here())
    with pytest.raises(LockLost):
        store.append(store.load("t1"), AgentMessage(text="too late"), fence=lock.value)
    assert [e.type for e in store.load("t1").events] == ["trigger", "agent_message"]
    lock.__exit__(None, None, None)


def test_a_renewer_that_finds_its_lock_taken_stops_the_job_before_its_next_step(store: Store) -> None:
    lock = ThreadLock(store.redis, "t1", Holder.here(), ttl=0.6)
    assert lock.acquire()
    stolen(lock, Holder.here())
    wait_for(lambda: lock._lost.is_set(), "the renewer to see the lock taken")
    with pytest.raises(LockLost):
        lock.check()


def test_a_lock_that_expired_while_redis_was_away_is_taken_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        connection = redis.Redis.from_url(server.url, socket_timeout=1)
        store = Store(connection)
        thread = store.create("t1", "deploy", trigger("start")).thread
        lock = ThreadLock(connection, "t1", Holder.here(), ttl=1)
        assert lock.acquire()
        server.kill()
        time.sleep(2.5)  # the outage: longer than the TTL, so the lock expires (the AOF keeps expiry times)
        server.start()
        wait_for(lambda: connection.get(key("lock", "t1")) == lock.value.encode(), "the lock taken back")
        lock.check()
        assert store.append(thread, AgentMessage(text="after the outage"), fence=lock.value).applied
        lock.__exit__(None, None, None)
    finally:
        server.stop()


def test_a_holder_is_gone_only_when_its_worker_no_longer_vouches_for_it(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    horse = Holder("worker-a", 101, "job1")
    asking = Holder("worker-b", 202, "job2")
    liveness.vouch(connection, "worker-a", 101, ttl=30)
    assert not liveness.is_gone(connection, str(horse), asking), "busy or stopped, but vouched for"
    liveness.vouch(connection, "worker-a", 102, ttl=30)
    assert liveness.is_gone(connection, str(horse), asking), "the worker moved on to another horse"
    connection.delete(key("alive", "worker-a"))
    assert liveness.is_gone(connection, str(horse), asking), "the whole worker stopped vouching"
    retried = Holder("worker-a", 103, "job1")
    assert liveness.is_gone(connection, str(horse), retried), "a worker runs one horse at a time"
    assert liveness.is_gone(connection, "a lock from before holders were named", asking)


def test_a_killed_horses_lock_is_taken_over_by_its_retried_job(runtime: Runtime) -> None:
    thread_id = runtime.launch("notes", "hello").thread.id
    dead_horse = Holder(Holder.here().worker, 1, "killed")  # same worker, another process
    runtime.connection.set(key("lock", thread_id), str(dead_horse), px=60_000)
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.DONE


def test_an_open_call_whose_holder_is_alive_is_left_alone(runtime: Runtime) -> None:
    thread = runtime.store.create("t-busy", "deploy", trigger("ship it")).thread  # no step taken yet
    busy = Holder("another-worker", 4242, "deploying")
    liveness.vouch(runtime.connection, busy.worker, busy.pid, ttl=30)
    call = ToolCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0", "environment": "staging"})
    runtime.store.append(thread, call.model_copy(update={"holder": str(busy)}))
    waiting = advance_and_answer(runtime, thread.id)
    assert waiting is not None and waiting.open_call is not None
    assert [e.type for e in runtime.load(thread.id).events] == ["trigger", "tool_call"], "nothing written"

    # The holder finishes after losing the lock: its result is kept and closes the call.
    runtime.record_late(thread.id, ToolResult(call_id="c1", tool="deploy", output="deployed"))
    resumed = runtime.load(thread.id)
    assert resumed.open_call is None and resumed.status is Status.RUNNING
    assert "error" not in [e.type for e in resumed.events], "no false 'interrupted'"


def test_an_open_call_whose_holder_is_gone_goes_to_a_human(runtime: Runtime) -> None:
    thread = runtime.launch("deploy", "ship it").thread
    gone = Holder("a-dead-worker", 4242, "deploying")
    call = ToolCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0", "environment": "staging"})
    runtime.store.append(thread, call.model_copy(update={"holder": str(gone)}))
    asked = advance_and_answer(runtime, thread.id)
    assert asked is not None and asked.status is Status.AWAITING_HUMAN
    assert [e.type for e in asked.events][-2:] == ["error", "human_request"]


def test_a_late_result_of_a_call_taken_for_interrupted_is_kept_but_changes_nothing(runtime: Runtime) -> None:
    thread = runtime.launch("deploy", "ship it").thread
    call = ToolCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0", "environment": "staging"})
    runtime.store.append(thread, call.model_copy(update={"holder": str(Holder("gone", 1, "x"))}))
    asked = advance_and_answer(runtime, thread.id)
    assert asked is not None and asked.pending is not None
    late = runtime.record_late(
        thread.id, ToolResult(call_id="c1", tool="deploy", output="deployed after all")
    )
    assert late.thread.pending == asked.pending, "the question to the human stands"
    assert late.thread.events[-1].type == "tool_result"
