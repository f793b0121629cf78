"""A thread's events: a sequence that behaves as a tuple, grows in place, and never changes."""

from __future__ import annotations

import threading

import pytest

from agent.events import AgentMessage, Event
from agent.history import History
from agent.thread import Thread, reduce, replay
from bench.long import long_thread
from tests.kernel_helpers import trigger
from tests.test_reduce import answers

EVENTS: list[Event] = [trigger(), AgentMessage(text="one"), AgentMessage(text="two")]


def test_a_history_behaves_as_a_tuple_of_its_events() -> None:
    history = replay("t1", "test", EVENTS).events
    events = tuple(EVENTS)
    assert history == events and events == history and history != EVENTS[:2]
    assert len(history) == 3 and bool(history) and not History()
    assert [history[n] for n in range(-3, 3)] == [*events, *events]
    assert history[1:] == events[1:] and history[::-1] == events[::-1] and history[5:] == ()
    assert isinstance(history[:2], tuple)
    assert list(history) == list(events) and list(reversed(history)) == list(reversed(events))
    assert EVENTS[1] in history and history.index(EVENTS[2]) == 2 and history.count(EVENTS[0]) == 1


@pytest.mark.parametrize("index", [3, -4])
def test_an_index_past_either_end_raises_index_error(index: int) -> None:
    with pytest.raises(IndexError, match=f"event index {index} out of range for a history of 3 events"):
        replay("t1", "test", EVENTS).events[index]


def messages(thread: Thread) -> list[str]:
    return [e.text for e in thread.events if isinstance(e, AgentMessage)]


def test_a_thread_keeps_its_events_after_others_grow_from_it() -> None:
    base = replay("t1", "test", EVENTS)
    longer = reduce(base, AgentMessage(text="three"))
    other = reduce(base, AgentMessage(text="elsewhere"))
    assert base.events == tuple(EVENTS)
    assert messages(longer) == ["one", "two", "three"]
    assert messages(other) == ["one", "two", "elsewhere"]


def test_replaying_a_long_thread_equals_folding_it_one_event_at_a_time() -> None:
    events = long_thread(3_000)
    thread = Thread(id="t1", agent="test")
    along_the_way = {}
    for n, event in enumerate(events, start=1):
        thread = reduce(thread, event)
        if n % 500 == 0:
            along_the_way[n] = thread
    assert answers(thread) == answers(replay("t1", "test", events))
    assert thread.ignored and thread.trigger == events[0]
    for n, earlier in along_the_way.items():
        assert answers(earlier) == answers(replay("t1", "test", events[:n])), f"after {n} events"
    assert answers(Thread.from_json(thread.to_json())) == answers(thread)


def race(base: Thread, texts: tuple[str, ...]) -> dict[str, Thread]:
    """Fold one message per text onto ``base``, each in its own thread, all released at once."""
    start = threading.Barrier(len(texts))
    folded: dict[str, Thread] = {}

    def fold(text: str) -> None:
        start.wait()
        folded[text] = reduce(base, AgentMessage(text=text))

    racers = [threading.Thread(target=fold, args=(text,)) for text in texts]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    return folded


def test_threads_folding_different_events_onto_one_thread_at_once_keep_their_own() -> None:
    # Only one of the racing folds may append in place; the others must copy.
    for round in range(200):
        base = replay("t1", "test", EVENTS)
        for text, thread in race(base, ("left", "right")).items():
            assert messages(thread) == ["one", "two", text], f"round {round}"
        assert base.events == tuple(EVENTS)
