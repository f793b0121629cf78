"""Snapshots are a cache of the fold: a thread loaded from one plus the events after it equals
the replay of its whole log, and a snapshot the log does not continue is ignored."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.events import (
    EVENT_ADAPTER,
    AgentMessage,
    Event,
    HumanRequest,
    HumanResponse,
    Origin,
    ProposedCall,
    Trigger,
    new_id,
)
from agent.thread import Thread, replay
from bot.state.snapshots import SNAPSHOT_EVERY
from bot.state.store import Store, key
from tests.strategies import event_sequences

AGENT = "deploy"


@pytest.fixture
def connection(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


def stored(connection: redis.Redis, thread_id: str, events: Sequence[Event]) -> None:
    """Write ``events`` as the log of ``thread_id``, as appends would have."""
    connection.hset(key("thread", thread_id, "meta"), "agent", AGENT)
    appended(connection, thread_id, events)


def appended(connection: redis.Redis, thread_id: str, events: Sequence[Event]) -> None:
    connection.rpush(key("thread", thread_id, "events"), *[EVENT_ADAPTER.dump_json(e) for e in events])


def assert_same(loaded: Thread, replayed: Thread) -> None:
    """Equal fields, and the same answers from the lookups the events' indexes serve."""
    assert loaded == replayed
    assert loaded.ignored == replayed.ignored
    assert loaded.events.partial_positions() == replayed.events.partial_positions()
    assert loaded.trigger == replayed.trigger
    for request in (e for e in replayed.events if isinstance(e, HumanRequest)):
        assert loaded.request(request.request_id) == replayed.request(request.request_id)
        assert loaded.response_to(request.request_id) == replayed.response_to(request.request_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_sequences(max_quorum=3), st.data())
def test_a_snapshot_and_the_events_after_it_equal_the_replay_of_the_log(
    connection: redis.Redis, events: list[Event], data: st.DataObject
) -> None:
    """From Redis's snapshot (a process that never saw the thread) or from this process's own
    (it loaded the thread before the rest arrived), the outcome is the replay's; approval
    requests may need several approvals, so a snapshot may hold one counted short of its quorum."""
    cut = data.draw(st.integers(min_value=1, max_value=len(events)), label="snapshot at")
    in_redis = data.draw(st.booleans(), label="snapshot in Redis")
    thread_id = new_id()
    stored(connection, thread_id, events[:cut])
    store = Store(connection)
    if in_redis:
        store.snapshots.save(replay(thread_id, AGENT, events[:cut]))
        store = Store(connection)
    else:
        store.load(thread_id)
    if events[cut:]:
        appended(connection, thread_id, events[cut:])

    assert_same(store.load(thread_id), replay(thread_id, AGENT, events))


def test_an_approval_short_of_its_quorum_settles_nothing_after_a_snapshot(connection: redis.Redis) -> None:
    call = ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1"})
    request = HumanRequest(request_id="r1", kind="approval", text="deploy v1?", call=call, quorum=2)
    first = HumanResponse(request_id="r1", responder="alice", approved=True)
    events: list[Event] = [
        Trigger(text="deploy v1", origin=Origin(channel="cli", sender="rita")),
        request,
        first,
    ]
    stored(connection, "q", events)
    Store(connection).snapshots.save(replay("q", AGENT, events))

    loaded = Store(connection).load("q")
    assert loaded.response_to("r1") is None and loaded.approvals == ("alice",)
    second = HumanResponse(request_id="r1", responder="bob", approved=True)
    appended(connection, "q", [second])
    settled = Store(connection).load("q")
    assert settled.response_to("r1") == second and settled.approved == call
    assert_same(settled, replay("q", AGENT, [*events, second]))


def messages(count: int) -> list[Event]:
    events: list[Event] = [AgentMessage(text=f"message {n}") for n in range(count)]
    return events


def test_a_long_thread_gets_a_snapshot_when_loaded_and_a_short_one_does_not(connection: redis.Redis) -> None:
    stored(connection, "long", messages(SNAPSHOT_EVERY))
    stored(connection, "short", messages(3))
    Store(connection).load("long")
    Store(connection).load("short")
    assert connection.exists(key("thread", "long", "snapshot"))
    assert not connection.exists(key("thread", "short", "snapshot"))


def _other_code(connection: redis.Redis, thread_id: str) -> None:
    head = connection.hget(key("thread", thread_id, "snapshot"), "head")
    assert isinstance(head, bytes)
    connection.hset(key("thread", thread_id, "snapshot"), "head", head.replace(b'"fold":"', b'"fold":"x'))


def _corrupt(connection: redis.Redis, thread_id: str) -> None:
    connection.hset(key("thread", thread_id, "snapshot"), "events", b'[{"type": "no such event"}]')


def _ahead_of_the_log(connection: redis.Redis, thread_id: str) -> None:
    connection.rpop(key("thread", thread_id, "events"), 3)


def _of_another_log(connection: redis.Redis, thread_id: str) -> None:
    log = key("thread", thread_id, "events")
    connection.delete(log)
    appended(connection, thread_id, messages(SNAPSHOT_EVERY + 2))


@pytest.mark.parametrize("spoil", [_other_code, _corrupt, _ahead_of_the_log, _of_another_log])
def test_a_snapshot_the_log_does_not_continue_is_ignored_and_replaced(
    connection: redis.Redis, spoil: Callable[[redis.Redis, str], None]
) -> None:
    stored(connection, "t", messages(2 * SNAPSHOT_EVERY))
    Store(connection).load("t")
    spoil(connection, "t")

    log = [EVENT_ADAPTER.validate_json(raw) for raw in connection.lrange(key("thread", "t", "events"), 0, -1)]
    assert_same(Store(connection).load("t"), replay("t", AGENT, log))
    rebuilt = Store(connection).snapshots.stored("t", AGENT)
    assert rebuilt is not None and rebuilt == replay("t", AGENT, log), "the snapshot was written again"
