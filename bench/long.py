"""``python -m bench long``: what folding and rendering cost per event as a thread grows.

A step of a long-lived thread (a Slack thread or a schedule that runs for weeks) folds
the thread's events and renders its context before every model call, so both must cost
the same per event on a thread of 10,000 events as on one of 10. This measures, in one
process and one run, the CPU time of:

- folding N events (``agent.thread.replay``) for N = 10, 1,000 and 10,000;
- rendering the context of an N-event thread (``agent.context.user_prompt``) at the
  default budget, so that long threads are compacted; the same thread again and again, so
  from the second call on it reuses the renderings its history keeps, as a worker's next
  step of a thread it holds does (a first rendering is part of a whole step's figures);
- a bare loop appending N items to a list: the least any fold of N events can cost.

Each is printed with its cost per event against the 10-event case of the same work
(1.0x means linear) and against the bare loop of the same N. The threads are a fixed,
realistic mix (tool calls and results, errors, questions and approvals with double
clicks the thread ignores, follow-up triggers), the same in every run.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from agent.context import user_prompt
from agent.definition import AgentSpec
from agent.events import (
    AgentMessage,
    Context,
    Done,
    Error,
    Event,
    HumanRequest,
    HumanResponse,
    Origin,
    ProposedCall,
    ToolCall,
    ToolResult,
    Trigger,
)
from agent.thread import Thread, replay

SIZES = (10, 1_000, 10_000)
BUDGET = AgentSpec.context_budget
"""Tokens the rendered events may take: the default, so long threads are compacted."""
FOLD_TARGETS = {1_000: 0.010, 10_000: 0.100}
"""Seconds folding N events may take (the issue's targets)."""
BATCH = 0.05
"""Seconds of CPU time one timed batch should last, so that short cases are timed in bulk."""
BATCHES = 5
"""Batches per case; the fastest counts (the others lost time to the rest of the machine)."""
LONG = 1.0
"""Seconds beyond which a single call is timed once."""
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
ORIGIN = Origin(channel="slack", sender="U042ALICE", address={"channel": "C0DEPLOY", "thread_ts": "1.0"})
TAGS = "\n".join(f"v1.{minor}.{patch}" for minor in range(9, -1, -1) for patch in range(9, -1, -1))


def _round(n: int, number: int) -> list[Event]:
    """The events of the ``n``-th exchange, starting at event ``number`` of the thread."""
    stamp = [{"id": f"e{number + i:06d}", "at": START + timedelta(seconds=number + i)} for i in range(16)]
    call = ProposedCall(call_id=f"d{n}", tool="deploy", arguments={"tag": f"v1.{n}.0"})
    request = f"r{n}"
    return [
        Trigger(**stamp[0], text=f"Please ship release {n} to production", origin=ORIGIN),
        Context(**stamp[1], name="deploy_window", content="Production deploys: Mon-Thu 09:00-16:00 UTC."),
        ToolCall(**stamp[2], call_id=f"l{n}", tool="list_tags", arguments={"limit": 100}),
        Error(**stamp[3], source="tool", tool="list_tags", call_id=f"l{n}", message="git tag timed out"),
        ToolCall(**stamp[4], call_id=f"m{n}", tool="list_tags", arguments={"limit": 100}),
        ToolResult(**stamp[5], call_id=f"m{n}", tool="list_tags", output=TAGS),
        HumanRequest(
            **stamp[6],
            request_id=request,
            kind="approval",
            text="Approve?",
            call=call,
            approvers=("U042ALICE",),
        ),
        HumanResponse(**stamp[7], request_id=request, responder="U0MALLORY", approved=True),
        HumanResponse(**stamp[8], request_id=request, responder="U042ALICE", approved=True),
        HumanResponse(**stamp[9], request_id=request, responder="U042ALICE", approved=True),
        ToolCall(**stamp[10], call_id=call.call_id, tool=call.tool, arguments=call.arguments),
        ToolResult(**stamp[11], call_id=call.call_id, tool="deploy", output="deployed\nhealth check: ok"),
        Error(**stamp[12], source="model", message="the model API is overloaded (529)"),
        AgentMessage(**stamp[13], text=f"Release {n} is live."),
        Done(**stamp[14], message=f"Deployed release {n}.", basis=number + 14),
        AgentMessage(**stamp[15], text="Ask again any time."),
    ]


def long_thread(size: int) -> list[Event]:
    """``size`` events of repeated deploy exchanges, each opened by a new trigger."""
    events: list[Event] = []
    n = 0
    while len(events) < size:
        events.extend(_round(n, len(events)))
        n += 1
    return events[:size]


def cpu_seconds(work: Callable[[], object]) -> float:
    """The CPU time one call of ``work`` takes: the fastest of a few batches of calls."""
    started = time.process_time()
    work()
    once = time.process_time() - started
    if once >= LONG:
        return once
    number = max(1, math.ceil(BATCH / max(once, 1e-6)))
    best = math.inf
    for _ in range(BATCHES):
        started = time.process_time()
        for _ in range(number):
            work()
        best = min(best, (time.process_time() - started) / number)
    return best


def _append_all(events: Sequence[Event]) -> list[Event]:
    items: list[Event] = []
    for event in events:
        items.append(event)
    return items


@dataclass(frozen=True)
class Case:
    work: str
    events: int
    seconds: float


def measure(sizes: Sequence[int]) -> list[Case]:
    cases = []
    for size in sizes:
        events = long_thread(size)
        thread = replay("long", "deploy", events)
        cases.append(Case("bare list append", size, cpu_seconds(partial(_append_all, events))))
        cases.append(Case("folding (replay)", size, cpu_seconds(partial(_fold, events))))
        cases.append(Case("rendering the context", size, cpu_seconds(partial(_render, thread))))
    return cases


def _fold(events: Sequence[Event]) -> Thread:
    return replay("long", "deploy", events)


def _render(thread: Thread) -> str:
    return user_prompt(thread, BUDGET)


def report(cases: Sequence[Case], load: tuple[float, float, float]) -> str:
    smallest = min(case.events for case in cases)
    first = {case.work: case for case in cases if case.events == smallest}
    bare = {case.events: case for case in cases if case.work == "bare list append"}
    header = f"{'':24}{'events':>8}{'total':>12}{'per event':>12}{'x per event':>13}{'x list append':>15}"
    under = f"{'':24}{'':>8}{'':>12}{'':>12}{f'of {smallest}':>13}{'of same N':>15}"
    rows = []
    for work in first:
        for case in (c for c in cases if c.work == work):
            per_event = case.seconds / case.events
            linear = per_event / (first[work].seconds / first[work].events)
            against_bare = case.seconds / bare[case.events].seconds
            rows.append(
                f"{work:24}{case.events:>8,}{_ms(case.seconds):>12}{_us(per_event):>12}"
                f"{linear:>12.2f}x{against_bare:>14.1f}x"
            )
    cpus = os.cpu_count()
    loads = ", ".join(f"{value:.2f}" for value in load)
    return "\n".join(
        [
            f"Long threads: CPU time per call, fastest of {BATCHES} batches (a call over {LONG:.0f} s: once)",
            f"python {platform.python_version()}, {cpus} CPUs, load average at start: {loads}",
            f"context budget {BUDGET} tokens; 'x per event': cost per event / the {smallest}-event case's"
            " (1.0x is linear)",
            "",
            header,
            under,
            *rows,
            "",
            *_verdict(cases),
        ]
    )


def _verdict(cases: Sequence[Case]) -> list[str]:
    lines = []
    for case in cases:
        target = FOLD_TARGETS.get(case.events)
        if case.work == "folding (replay)" and target is not None:
            met = "met" if case.seconds < target else "NOT met"
            lines.append(
                f"folding {case.events:,} events: {_ms(case.seconds)} -> target < {_ms(target)}: {met}"
            )
    return lines


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f} us"
