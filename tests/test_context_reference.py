"""The context renderer against the one it replaced, kept here as the reference.

The renderer walks a thread from its newest event back, only as far as the budget holds,
and counts what it folds from the history's indexes. The reference below is the renderer
as it was before: a pass over every event, then compaction from the oldest. Both must give
the same text, byte for byte, for every thread and budget: random threads (with ignored
responses, resolved errors and control events), long ones, and older threads whose history
a longer one has grown since.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.context import KEEP_RECENT, render_event, render_events, user_prompt
from agent.events import Error, Event, ToolCall, ToolResult
from agent.prompts import render
from agent.thread import Thread, reduce, replay, without_ignored_responses
from bench.long import long_thread
from tests.strategies import event_sequences

budgets = st.integers(min_value=0, max_value=800)


def reference_user_prompt(thread: Thread, budget: int) -> str:
    return render("context", events=reference_render_events(without_ignored_responses(thread), budget))


def reference_render_events(events: Sequence[Event], budget: int) -> str:
    shown = [(e, tag) for e in _without_resolved_errors(events) if (tag := render_event(e)) is not None]
    visible, rendered = [event for event, _ in shown], [tag for _, tag in shown]
    kept = sum(len(tag) + 1 for tag in rendered) - 1
    folded: tuple[Counter[str], Counter[str]] | None = None
    cut = 1
    while _too_long(kept, folded, budget) and cut < len(visible) - KEEP_RECENT:
        kept -= len(rendered[cut]) + 1
        folded = folded or (Counter(), Counter())
        event = visible[cut]
        if isinstance(event, ToolCall):
            folded[0][event.tool] += 1
        else:
            folded[1][event.type] += 1
        cut += 1
    if folded is None:
        return "\n".join(rendered)
    return "\n".join([rendered[0], _summary(folded), *rendered[cut:]])


def _too_long(kept: int, folded: tuple[Counter[str], Counter[str]] | None, budget: int) -> bool:
    if _tokens(kept) > budget:
        return True
    return folded is not None and _tokens(kept + len(_summary(folded)) + 1) > budget


def _tokens(chars: int) -> int:
    return (chars + 3) // 4


def _summary(folded: tuple[Counter[str], Counter[str]]) -> str:
    calls, kinds = folded
    parts = [f"{count} {kind}" for kind, count in sorted(kinds.items())]
    if calls:
        tools = ", ".join(f"{name} x{count}" for name, count in sorted(calls.items()))
        parts.insert(0, f"tool calls: {tools}")
    count = calls.total() + kinds.total()
    return f'<compacted events="{count}">{escape("; ".join(parts))}</compacted>'


def _without_resolved_errors(events: Sequence[Event]) -> list[Event]:
    last_success: dict[str | None, int] = {}
    for index, event in enumerate(events):
        if isinstance(event, ToolResult):
            last_success[event.tool] = index
            last_success[None] = index

    def resolved(index: int, event: Event) -> bool:
        return isinstance(event, Error) and index < last_success.get(event.tool, -1)

    return [event for index, event in enumerate(events) if not resolved(index, event)]


@settings(max_examples=150, deadline=None)
@given(events=event_sequences(max_size=40), budget=budgets)
def test_a_thread_renders_as_the_reference_renders_it(events: list[Event], budget: int) -> None:
    thread = replay("t", "test", events)
    assert user_prompt(thread, budget) == reference_user_prompt(thread, budget)
    assert user_prompt(thread, budget) == reference_user_prompt(thread, budget), (
        "again, from the kept renderings"
    )


@settings(max_examples=100, deadline=None)
@given(events=event_sequences(max_size=40), budget=budgets, skip=st.integers(min_value=0, max_value=5))
def test_any_event_sequence_renders_as_the_reference_renders_it(
    events: list[Event], budget: int, skip: int
) -> None:
    # Without its first events, a sequence may open with errors, responses or control events.
    assert render_events(events[skip:], budget) == reference_render_events(events[skip:], budget)


@settings(max_examples=100, deadline=None)
@given(events=event_sequences(max_size=40), budgets=st.lists(budgets, min_size=1, max_size=4), data=st.data())
def test_older_threads_of_a_grown_history_render_as_the_reference_renders_them(
    events: list[Event], budgets: list[int], data: st.DataObject
) -> None:
    threads = [Thread(id="t", agent="test")]
    for event in events:
        threads.append(reduce(threads[-1], event))
    user_prompt(threads[-1], budgets[0])  # the longest first: its renderings are kept in the shared log
    for budget in budgets:
        thread = data.draw(st.sampled_from(threads))
        assert user_prompt(thread, budget) == reference_user_prompt(thread, budget)


# Drawing hundreds of events is slow on a busy machine; what is slow is the drawing, not the test.
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rounds=st.lists(event_sequences(max_size=15), min_size=20, max_size=60),
    budget=st.integers(min_value=0, max_value=3_000),
)
def test_a_long_random_thread_renders_as_the_reference_renders_it(
    rounds: list[list[Event]], budget: int
) -> None:
    thread = replay("t", "test", [event for events in rounds for event in events])
    assert user_prompt(thread, budget) == reference_user_prompt(thread, budget)


def test_the_bench_long_thread_renders_as_the_reference_renders_it() -> None:
    thread = replay("t", "test", long_thread(10_000))
    for budget in (0, 50, 600, 6_000, 60_000, 10**7):
        assert user_prompt(thread, budget) == reference_user_prompt(thread, budget)
