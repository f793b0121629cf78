"""``outerloop stats``: what the agents did and what it cost, for the threads started since a time.

Everything is read from the threads' logs, the only state: statuses, steps, tool calls and
errors, approvals and how long people took to answer them, and the model calls' tokens and
cost (``bot.usage.tokens``). The threads are found through the creation-time index (``ol:threads``),
so only threads created since ``--since`` are read, a batch per round trip.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from agent.events import EVENT_ADAPTER, Forked, HumanRequest, ModelDecided, RequestExpired, ToolCall
from agent.events import Error as ErrorEvent
from agent.thread import Thread, replay
from bot.state.store import Store, key
from bot.usage.prices import Prices
from bot.usage.tokens import Spend, spent

BATCH = 100
"""Threads read per round trip to Redis."""


@dataclass
class Approvals:
    """The approval requests of some threads, and how they were settled."""

    asked: int = 0
    approved: int = 0
    rejected: int = 0
    by_grant: int = 0
    """Settled at once by a standing approval: nobody was waited for."""
    waiting: int = 0
    timed_out: int = 0
    reminded: int = 0
    """Reminders and escalations: a deadline passed and the request was asked again."""
    waits: list[float] = field(default_factory=list)
    """Seconds from each request to the person's answer that settled it."""

    def as_json(self) -> dict[str, Any]:
        median, p90 = percentiles(self.waits)
        counts = {name: getattr(self, name) for name in ("asked", "approved", "rejected", "by_grant")}
        return {
            **counts,
            "waiting": self.waiting,
            "timed_out": self.timed_out,
            "reminded": self.reminded,
            "time_to_answer": {"median": median, "p90": p90},
        }


@dataclass
class Tally:
    """What the threads of one agent (or of all agents) did."""

    statuses: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    """Model decisions: each is one step of a thread."""
    tool_calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Error events by source: tool, arguments, model, interrupted."""
    approvals: Approvals = field(default_factory=Approvals)
    spend: Spend = field(default_factory=Spend)

    def add(self, thread: Thread, prices: Prices) -> None:
        self.statuses[thread.status.value] += 1
        asked: dict[str, HumanRequest] = {}
        timed_out: set[str] = set()
        for at in range(own_start(thread), len(thread.events)):
            match event := thread.events[at]:
                case ModelDecided():
                    self.steps += 1
                case ToolCall():
                    self.tool_calls += 1
                case ErrorEvent(source=source):
                    self.errors[source] += 1
                case HumanRequest(kind="approval"):
                    asked[event.request_id] = event
                case RequestExpired() if event.request_id in asked and not thread.events.is_ignored(at):
                    # An expiry that lost a race (to an answer, another scheduler) changed nothing.
                    if event.outcome == "timed_out":
                        timed_out.add(event.request_id)
                    else:
                        self.approvals.reminded += 1
        for request in asked.values():
            self._approval(thread, request, timed_out)
        self.spend += spent(thread.events, prices)

    def _approval(self, thread: Thread, request: HumanRequest, timed_out: set[str]) -> None:
        approvals = self.approvals
        approvals.asked += 1
        answer = thread.response_to(request.request_id)
        if answer is not None and answer.under is not None:
            approvals.by_grant += 1
        elif answer is not None:
            approvals.approved += answer.approved is True
            approvals.rejected += answer.approved is not True
            approvals.waits.append((answer.at - request.at).total_seconds())
        elif request.request_id in timed_out:
            approvals.timed_out += 1
        elif thread.pending is not None and thread.pending.request_id == request.request_id:
            approvals.waiting += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "threads": sum(self.statuses.values()),
            "by_status": dict(sorted(self.statuses.items())),
            "steps": self.steps,
            "tool_calls": self.tool_calls,
            "tool_errors": self.errors["tool"],
            "errors": dict(sorted(self.errors.items())),
            "approvals": self.approvals.as_json(),
            "usage": self.spend.as_json(),
        }


@dataclass
class Stats:
    since: float
    agents: dict[str, Tally] = field(default_factory=dict)
    total: Tally = field(default_factory=Tally)

    def add(self, thread: Thread, prices: Prices) -> None:
        self.agents.setdefault(thread.agent, Tally()).add(thread, prices)
        self.total.add(thread, prices)

    def as_json(self) -> dict[str, Any]:
        return {
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "agents": {name: tally.as_json() for name, tally in sorted(self.agents.items())},
            "total": self.total.as_json(),
        }


def own_start(thread: Thread) -> int:
    """Where the events this thread made itself start: after its last ``forked`` event, if it
    is a fork (the events before it are its source's, counted there)."""
    for at in range(len(thread.events) - 1, -1, -1):
        if isinstance(thread.events[at], Forked):
            return at + 1
    return 0


def percentiles(values: list[float]) -> tuple[float | None, float | None]:
    """The median and the 90th percentile (nearest rank) of ``values``, in seconds; None without any."""
    if not values:
        return None, None
    ordered = sorted(values)
    return round(statistics.median(ordered), 3), round(ordered[math.ceil(0.9 * len(ordered)) - 1], 3)


def threads_since(store: Store, start: float) -> Iterator[Thread]:
    """The threads created at or after ``start`` (a Unix time), oldest first, rebuilt from their
    logs ``BATCH`` at a time; threads whose retention ran out meanwhile are left out."""
    ids = [_text(raw) for raw in cast(list[bytes], store.redis.zrangebyscore(key("threads"), start, "+inf"))]
    for first in range(0, len(ids), BATCH):
        batch = ids[first : first + BATCH]
        pipe = store.redis.pipeline(transaction=False)
        for thread_id in batch:
            pipe.hget(key("thread", thread_id, "meta"), "agent")
            pipe.lrange(key("thread", thread_id, "events"), 0, -1)
        answers = pipe.execute()
        for thread_id, agent, raw in zip(batch, answers[::2], answers[1::2], strict=True):
            if agent is not None and raw:
                yield replay(thread_id, _text(agent), [EVENT_ADAPTER.validate_json(item) for item in raw])


def gather(store: Store, start: float, prices: Prices) -> Stats:
    stats = Stats(since=start)
    for thread in threads_since(store, start):
        stats.add(thread, prices)
    return stats


def render(stats: Stats) -> str:
    """``stats`` for people: a paragraph per agent, then all agents together."""
    total = sum(stats.total.statuses.values())
    lines = [f"threads started since {_when(stats.since)}: {total}"]
    for name, tally in sorted(stats.agents.items()):
        lines += ["", *_paragraph(name, tally)]
    if len(stats.agents) > 1:
        lines += ["", *_paragraph("all agents", stats.total)]
    return "\n".join(lines)


def _paragraph(name: str, tally: Tally) -> list[str]:
    statuses = ", ".join(f"{status} {count}" for status, count in sorted(tally.statuses.items()))
    errors = sum(tally.errors.values())
    approvals = tally.approvals
    median, p90 = percentiles(approvals.waits)
    answered = approvals.approved + approvals.rejected
    lines = [
        f"{name}: {_threads(sum(tally.statuses.values()))} ({statuses})",
        f"  steps {tally.steps}, tool calls {tally.tool_calls}, tool errors {tally.errors['tool']}, "
        f"all errors {errors}",
        f"  {tally.spend.describe()}",
    ]
    if approvals.asked:
        lines[2:2] = [
            f"  approvals {approvals.asked}: approved {approvals.approved}, rejected {approvals.rejected}, "
            f"by standing approval {approvals.by_grant}, waiting {approvals.waiting}, "
            f"timed out {approvals.timed_out}, reminded or escalated {approvals.reminded}",
            f"  time to answer ({answered} answered): median {_duration(median)}, p90 {_duration(p90)}",
        ]
    return lines


def _threads(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
