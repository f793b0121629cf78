"""The Redis store against a real redis-server: atomic, deduplicated, ordered appends."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from agent.events import AgentMessage, Cancelled, Origin, Trigger
from agent.thread import Status
from bot.state.store import Store, ThreadExists, ThreadNotFound
from tests.services import RedisServer


def trigger(text: str, key: str | None = None) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="test", sender="tester"), key=key)


@pytest.fixture
def store(redis_url: str) -> Store:
    return Store(redis.Redis.from_url(redis_url))


def test_an_event_delivered_three_times_is_applied_once(store: Store) -> None:
    thread = store.create("t1", "deploy", trigger("start")).thread
    outcomes = [store.append(store.load("t1"), trigger("again", key="slack:Ev123")) for _ in range(3)]
    assert [o.applied for o in outcomes] == [True, False, False]
    assert all(o.duplicate_of == "t1" for o in outcomes[1:])
    assert [e.type for e in store.load("t1").events] == ["trigger", "trigger"]
    assert len(thread.events) == 1


def test_an_append_from_a_stale_copy_lands_after_the_events_it_missed(store: Store) -> None:
    stale = store.create("t1", "deploy", trigger("start")).thread
    store.append(stale, AgentMessage(text="first"))
    result = store.append(stale, AgentMessage(text="second"))
    texts = [e.text for e in result.thread.events if isinstance(e, AgentMessage)]
    assert texts == ["first", "second"]
    assert result.thread == store.load("t1")


def test_the_status_index_follows_the_fold(store: Store) -> None:
    store.create("a", "deploy", trigger("a"))
    store.create("b", "deploy", trigger("b"))
    store.append(store.load("b"), Cancelled(by="me"))
    assert store.ids(Status.RUNNING) == ["a"]
    assert store.ids(Status.CANCELLED) == ["b"]
    assert store.ids() == ["b", "a"]
    summary = store.summary("b")
    assert (summary.status, summary.version, summary.agent) == (Status.CANCELLED, 2, "deploy")


def test_a_thread_id_cannot_be_created_twice(store: Store) -> None:
    store.create("t1", "deploy", trigger("start"))
    with pytest.raises(ThreadExists, match="t1"):
        store.create("t1", "deploy", trigger("other"))


def test_loading_an_unknown_thread_names_it(store: Store) -> None:
    with pytest.raises(ThreadNotFound, match="nope"):
        store.load("nope")


def test_no_thread_is_lost_when_redis_is_killed_and_restarted(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        store = Store(redis.Redis.from_url(server.url))
        for number in range(20):
            thread = store.create(f"t{number}", "deploy", trigger(f"job {number}")).thread
            store.append(thread, AgentMessage(text=f"note {number}"))
        before = {thread_id: store.load(thread_id) for thread_id in store.ids()}
        server.kill()
        server.start()
        store = Store(redis.Redis.from_url(server.url))
        after = {thread_id: store.load(thread_id) for thread_id in store.ids()}
        assert after == before
        assert len(after) == 20
    finally:
        server.stop()
