"""The tail a rendering keeps with a thread's history is a cache: what the next rendering
starts from must give the text a rendering from nothing gives, byte for byte.

A thread is grown a few events at a time, as its steps grow it, and rendered after each:
every rendering starts from the last one's tail (new events, errors a new success resolved,
the budget's cut moving on). Each must equal the reference renderer's text and the text of
the same events replayed into a new thread, which has no tail to start from. A thread
replayed from its events (a fork, an import) starts without the tail; a thread folded
another way from an older one keeps only a tail of the events they share.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.context import user_prompt
from agent.events import Error, Event, Origin, ToolCall, ToolResult, Trigger
from agent.thread import Thread, fork, reduce, replay
from bench.long import long_thread
from tests.strategies import event_sequences
from tests.test_context_reference import reference_user_prompt

budgets = st.integers(min_value=0, max_value=800)


def renders_as_replayed(thread: Thread, budget: int) -> None:
    """The thread renders (from its kept tail) as a replay of its events renders from nothing."""
    fresh = replay(thread.id, thread.agent, thread.events)
    assert fresh.events.kept(("tail", budget)) is None
    text = user_prompt(thread, budget)
    assert text == user_prompt(fresh, budget)
    assert text == reference_user_prompt(thread, budget)


def grown(thread: Thread, events: list[Event]) -> Thread:
    for event in events:
        thread = reduce(thread, event)
    return thread


@settings(max_examples=100, deadline=None)
@given(
    events=event_sequences(max_size=60),
    budget=budgets,
    steps=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=60),
)
def test_a_thread_rendered_as_it_grows_renders_as_its_replay(
    events: list[Event], budget: int, steps: list[int]
) -> None:
    thread, done = Thread(id="t", agent="test"), 0
    for size in steps:
        thread = grown(thread, events[done : done + size])
        done += size
        renders_as_replayed(thread, budget)
    renders_as_replayed(grown(thread, events[done:]), budget)


# Drawing hundreds of events is slow on a busy machine; what is slow is the drawing, not the test.
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rounds=st.lists(event_sequences(max_size=15), min_size=20, max_size=60),
    budgets=st.lists(st.integers(min_value=0, max_value=1_500), min_size=1, max_size=3),
)
def test_a_long_random_thread_rendered_as_it_grows_at_several_budgets_renders_as_its_replay(
    rounds: list[list[Event]], budgets: list[int]
) -> None:
    thread = Thread(id="t", agent="test")
    for n, events in enumerate(rounds):
        thread = grown(thread, events)
        renders_as_replayed(thread, budgets[n % len(budgets)])


def test_the_bench_long_thread_rendered_as_it_grows_renders_as_its_replay() -> None:
    events = long_thread(2_000)
    thread = replay("t", "test", events[:1_500])
    for start in range(1_500, 2_000, 7):
        thread = grown(thread, events[start : start + 7])
        renders_as_replayed(thread, 1_500)


def test_an_error_in_the_kept_tail_leaves_it_once_a_later_success_resolves_it() -> None:
    origin = Origin(channel="cli", sender="me")
    thread = replay("t", "test", [Trigger(text="go", origin=origin), *long_thread(600)[1:]])
    call = ToolCall(call_id="c1", tool="list_tags", arguments={})
    thread = grown(thread, [call, Error(source="tool", tool="list_tags", call_id="c1", message="timed out")])
    before = user_prompt(thread, 800)
    assert "timed out" in before
    thread = grown(
        thread,
        [call.model_copy(update={"call_id": "c2"}), ToolResult(call_id="c2", tool="list_tags", output="v1")],
    )
    renders_as_replayed(thread, 800)
    assert "timed out" not in user_prompt(thread, 800)


def test_a_fork_an_import_and_a_thread_folded_another_way_render_without_a_longer_tail() -> None:
    events = long_thread(1_200)
    thread = replay("t", "test", events[:1_000])
    user_prompt(thread, 700)
    longer = grown(thread, events[1_000:])
    user_prompt(longer, 700)
    assert thread.events.kept(("tail", 700)) is None, "a shorter history never uses a longer one's tail"
    copies = {
        "fork": fork(longer, 1_100, "t2"),
        "import": Thread.from_json(longer.to_json()),
        "folded another way": grown(
            thread, [Trigger(text="elsewhere", origin=Origin(channel="cli", sender="me"))]
        ),
    }
    for name, copy in copies.items():
        assert copy.events.kept(("tail", 700)) is None, name
        renders_as_replayed(copy, 700)
        renders_as_replayed(
            grown(copy, [Trigger(text="again", origin=Origin(channel="cli", sender="me"))]), 700
        )
        renders_as_replayed(grown(copy, events[1_100:1_150]), 700)
    renders_as_replayed(longer, 700)
    renders_as_replayed(thread, 700)


def test_a_thread_folded_another_way_keeps_the_tail_of_the_events_it_shares() -> None:
    events = long_thread(1_100)
    thread = replay("t", "test", events[:1_000])
    user_prompt(thread, 700)
    one_way = grown(thread, events[1_000:])  # in place: the log thread shares grows
    other_way = grown(thread, [Trigger(text="elsewhere", origin=Origin(channel="cli", sender="me"))])
    kept = other_way.events.kept(("tail", 700))
    assert kept is not None and kept[0] == 1_000, "the copy keeps the tail of the 1,000 events it shares"
    renders_as_replayed(other_way, 700)
    renders_as_replayed(one_way, 700)
