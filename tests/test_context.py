"""Context rendering: golden prompts, truncation, dropped errors, compaction, escaping.

The golden files under ``tests/golden/`` hold the exact prompts the model gets for a
realistic deploy thread. When a rendering change is intended, regenerate them with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_context.py

and review the diff of ``tests/golden/`` like any other change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.context import (
    KEEP_RECENT,
    MAX_OUTPUT_CHARS,
    estimate_tokens,
    render_event,
    render_events,
    system_prompt,
    user_prompt,
)
from agent.events import (
    AgentMessage,
    Cancelled,
    Context,
    Done,
    Error,
    Event,
    Failed,
    HumanRequest,
    HumanResponse,
    Origin,
    Paused,
    ProposedCall,
    Resumed,
    ToolCall,
    ToolResult,
    Trigger,
)
from agent.thread import replay
from bot.agents.deploy import deploy_agent
from tests.kernel_helpers import stamp, trigger

GOLDEN = Path(__file__).parent / "golden"
ALICE = "U042ALICE"
BOB = "U077BOB"
TAGS = "\n".join(f"v1.{minor}.{patch}" for minor in range(29, -1, -1) for patch in range(9, -1, -1))
"""300 tags, newest first: an output long enough to be truncated."""
BAD = ProposedCall(call_id="c3", tool="deploy", arguments={"tag": "v1.29.9", "environment": "production"})
GOOD = ProposedCall(call_id="c4", tool="deploy", arguments={"tag": "v1.29.8", "environment": "production"})
SLACK = Origin(
    channel="slack", sender=ALICE, address={"channel": "C0DEPLOY", "thread_ts": "1741078800.000100"}
)

DEPLOY_THREAD: list[Event] = [
    Trigger(
        **stamp(0),
        text="Please ship the latest release to production & tell <#C0OPS> when done",
        origin=SLACK,
    ),
    Context(
        **stamp(1), name="deploy_window", content="Production deploys: Mon-Thu 09:00-16:00 UTC. Today: Tue."
    ),
    ToolCall(**stamp(2), call_id="c1", tool="list_tags", arguments={"limit": 100}),
    Error(
        **stamp(3), source="tool", tool="list_tags", call_id="c1", message="RuntimeError: git tag timed out"
    ),
    ToolCall(**stamp(4), call_id="c2", tool="list_tags", arguments={"limit": 100}),
    ToolResult(**stamp(5), call_id="c2", tool="list_tags", output=TAGS),
    HumanRequest(
        **stamp(6),
        request_id="r1",
        kind="question",
        text="Which change ticket covers this deploy?",
        approvers=(ALICE,),
    ),
    HumanResponse(**stamp(7), request_id="r1", responder=ALICE, answer="CHG-1234"),
    HumanRequest(
        **stamp(8), request_id="r2", kind="approval", text="Approve?", call=BAD, approvers=(ALICE, BOB)
    ),
    HumanResponse(
        **stamp(9),
        request_id="r2",
        responder=BOB,
        approved=False,
        comment="v1.29.9 has the migration bug <MIG-7>; ship v1.29.8 & we patch later",
    ),
    AgentMessage(**stamp(10), text="Understood: proposing v1.29.8 instead."),
    HumanRequest(
        **stamp(11), request_id="r3", kind="approval", text="Approve?", call=GOOD, approvers=(ALICE, BOB)
    ),
    HumanResponse(**stamp(12), request_id="r3", responder=BOB, approved=True),
    ToolCall(**stamp(13), call_id="c4", tool="deploy", arguments=GOOD.arguments),
    ToolResult(
        **stamp(14),
        call_id="c4",
        tool="deploy",
        output="deployed v1.29.8 to production\nmigrations: 0 pending\nhealth check: ok",
    ),
    Paused(**stamp(15), by=ALICE, reason="checking the dashboards"),
    Resumed(**stamp(16), by=ALICE),
    Error(**stamp(17), source="model", message="the model API is overloaded (529) after 3 retries"),
    AgentMessage(**stamp(18), text="Posting the result to #ops."),
    Done(**stamp(19), message="Deployed v1.29.8 to production (CHG-1234). Last output: health check: ok"),
]


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"{path} differs; if intended, rerun with UPDATE_GOLDEN=1"
    )


def test_a_deploy_thread_renders_as_the_golden_user_prompt() -> None:
    agent = deploy_agent(Path("/srv/app"), "deploy.sh {tag} {environment}")
    thread = replay("t-golden", "deploy", DEPLOY_THREAD)
    assert_golden("deploy_thread_context.md", user_prompt(thread, agent.context_budget))


def test_a_long_thread_compacts_as_the_golden_user_prompt() -> None:
    # Ten rounds of the deploy thread under a small budget: most of it is folded into the summary.
    rounds = [
        event.model_copy(update=stamp(round * len(DEPLOY_THREAD) + n))
        for round in range(10)
        for n, event in enumerate(DEPLOY_THREAD)
    ]
    thread = replay("t-long", "deploy", rounds)
    assert_golden("long_thread_context.md", user_prompt(thread, budget=1500))


def test_the_deploy_agent_system_prompt_matches_the_golden_file() -> None:
    agent = deploy_agent(Path("/srv/app"), "deploy.sh {tag} {environment}")
    assert_golden("deploy_system_prompt.md", system_prompt(agent))


@pytest.mark.parametrize("event_type", [Context, ToolResult])
def test_long_outputs_are_truncated_with_a_note(event_type: type[Context] | type[ToolResult]) -> None:
    long = "x" * (MAX_OUTPUT_CHARS + 500)
    fields = (
        {"name": "n", "content": long}
        if event_type is Context
        else {"call_id": "c", "tool": "t", "output": long}
    )
    rendered = render_event(event_type(**fields))
    assert rendered is not None
    assert f"{'x' * MAX_OUTPUT_CHARS}\n[truncated: 500 more characters not shown]\n" in rendered
    assert "x" * (MAX_OUTPUT_CHARS + 1) not in rendered


def test_errors_resolved_by_a_later_tool_result_are_dropped() -> None:
    events: list[Event] = [
        trigger(),
        Error(source="tool", tool="lookup", message="first failure"),
        ToolResult(call_id="c1", tool="lookup", output="ok"),
        Error(source="model", message="second failure"),
    ]
    rendered = render_events(events, budget=10_000)
    assert "first failure" not in rendered
    assert "second failure" in rendered


def test_an_error_stays_in_view_after_an_unrelated_tool_succeeds() -> None:
    events: list[Event] = [
        trigger(),
        Error(source="interrupted", tool="deploy", message="deploy was interrupted"),
        Error(source="model", message="model hiccup"),
        ToolResult(call_id="c1", tool="lookup", output="ok"),
    ]
    rendered = render_events(events, budget=10_000)
    assert "deploy was interrupted" in rendered
    assert "model hiccup" not in rendered


def test_responses_the_thread_ignored_are_not_rendered() -> None:
    events: list[Event] = [
        trigger(),
        HumanRequest(request_id="r1", kind="approval", text="Approve?", call=GOOD, approvers=(ALICE,)),
        HumanResponse(request_id="r1", responder="U0MALLORY", approved=True, comment="not an approver"),
        HumanResponse(request_id="r1", responder=ALICE, approved=False, comment="the decision"),
        HumanResponse(request_id="r1", responder=ALICE, approved=True, comment="a late double click"),
        HumanResponse(request_id="r9", responder=ALICE, answer="no such request"),
    ]
    rendered = user_prompt(replay("t", "deploy", events), budget=10_000)
    assert f'<human_response from="{ALICE}" decision="rejected">the decision</human_response>' in rendered
    assert rendered.count("<human_response") == 1


def lookups(count: int) -> list[Event]:
    """A trigger then ``count`` lookup calls with their results."""
    events: list[Event] = [trigger()]
    for n in range(count):
        events.append(ToolCall(call_id=f"c{n}", tool="lookup", arguments={"query": f"item {n}"}))
        events.append(ToolResult(call_id=f"c{n}", tool="lookup", output=f"result {n} " * 10))
    return events


def compact(events: list[Event], budget: int) -> list[str]:
    """Render with ``budget``; check the first event, one summary, then an unbroken tail; return the tail."""
    lines = render_events(events, budget).splitlines()
    assert lines[0] == render_event(events[0])
    shown = lines[2:]
    assert shown == [render_event(e) for e in events[len(events) - len(shown) :]]
    folded = len(events) - 1 - len(shown)
    assert lines[1].startswith(f'<compacted events="{folded}">tool calls: lookup x')
    return shown


def test_a_tiny_budget_keeps_the_first_trigger_a_summary_and_the_recent_events() -> None:
    assert len(compact(lookups(15), budget=1)) == KEEP_RECENT


def test_compaction_folds_only_as_many_old_events_as_the_budget_needs() -> None:
    events = lookups(15)
    shown = compact(events, budget=400)
    assert len(shown) > KEEP_RECENT
    assert estimate_tokens(render_events(events, budget=400)) <= 400


def test_a_thread_within_budget_is_not_compacted() -> None:
    events = lookups(15)
    assert render_events(events, budget=10_000) == "\n".join(str(render_event(e)) for e in events)


def test_text_with_markup_is_escaped() -> None:
    event = Trigger(text='if a < b && c > "d"', origin=Origin(channel="email", sender='eve "the" <admin>'))
    assert render_event(event) == (
        '<email_message from="eve &quot;the&quot; &lt;admin&gt;">'
        'if a &lt; b &amp;&amp; c &gt; "d"</email_message>'
    )


def test_control_events_are_not_rendered() -> None:
    control: list[Event] = [Paused(by=ALICE), Resumed(by=ALICE), Cancelled(by=ALICE), Failed(reason="gone")]
    assert [render_event(e) for e in control] == [None] * 4
    first = trigger()
    assert render_events([first, *control], budget=10_000) == render_event(first)
