"""What a fault did to the promises, counted from outside: the deploy log, the threads, Slack.

- executions: deploys that started (the deploy log's ``start`` lines);
- duplicates: executions beyond the ones humans honestly approved;
- lost: answers the API accepted that the thread does not hold, and finished deploys whose
  result no event records;
- undelivered: human requests no Slack message shows;
- stuck: threads that did not get to ``done``;
- false interrupted: calls reported "interrupted" while the worker running them was alive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.faults.effects import Executions

JSON = dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    threads: int
    executions: int
    duplicates: int
    lost: int
    undelivered: int
    stuck: int
    false_interrupted: int
    details: tuple[str, ...] = ()
    """One line per thread that broke a promise: its status and its events, to say how."""

    def problems(self) -> list[str]:
        counts = {
            "duplicate executions": self.duplicates,
            "lost events": self.lost,
            "undelivered requests": self.undelivered,
            "threads not done": self.stuck,
            "false 'interrupted' errors": self.false_interrupted,
        }
        found = [f"{count} {what}" for what, count in counts.items() if count]
        return [*found, *self.details] if found else []

    def verify(self) -> None:
        """Fail, saying what broke and on which threads, unless every promise was kept."""
        problems = self.problems()
        assert not problems, "promises broken:\n" + "\n".join(problems)


def judge(
    threads: Mapping[str, JSON],
    executions: Executions,
    accepted: Mapping[str, Sequence[str]],
    expected: int,
    posts: Sequence[JSON] | None = None,
    holder_survives: bool = True,
) -> Outcome:
    """Count what broke; ``expected`` is how many deploys humans honestly approved, ``posts`` the
    Slack messages (None when the threads are not Slack's), ``holder_survives`` whether the fault
    left every worker alive (then any "interrupted" is false)."""
    shown = [json.dumps(post) for post in posts] if posts is not None else None
    lost = undelivered = false_interrupted = results = 0
    details = []
    for thread_id, body in threads.items():
        events = body["events"]
        answered = {e["request_id"] for e in events if e["type"] == "human_response"}
        thread_lost = sum(request_id not in answered for request_id in accepted.get(thread_id, ()))
        requests = [e["request_id"] for e in events if e["type"] == "human_request"]
        thread_undelivered = (
            sum(not any(request_id in post for post in shown) for request_id in requests)
            if shown is not None
            else 0
        )
        interrupted = sum(e["type"] == "error" and e.get("source") == "interrupted" for e in events)
        thread_false = interrupted if holder_survives else 0
        results += _deploy_results(events)
        lost += thread_lost
        undelivered += thread_undelivered
        false_interrupted += thread_false
        if thread_lost or thread_undelivered or thread_false or body["status"] != "done":
            details.append(f"thread {thread_id} {body['status']}: {' '.join(_describe(e) for e in events)}")
    return Outcome(
        threads=len(threads),
        executions=len(executions.starts),
        duplicates=max(0, len(executions.starts) - expected),
        lost=lost + max(0, executions.ends - results),
        undelivered=undelivered,
        stuck=sum(body["status"] != "done" for body in threads.values()),
        false_interrupted=false_interrupted,
        details=tuple(details),
    )


def _deploy_results(events: Sequence[JSON]) -> int:
    """Events that record how a deploy call ended: its result, however the runtime names it."""
    calls = {e["call_id"] for e in events if e["type"] == "tool_call" and e.get("tool") == "deploy"}
    return sum("result" in e["type"] and e.get("call_id") in calls for e in events)


def _describe(event: JSON) -> str:
    if event["type"] == "error":
        return f"error:{event.get('source')}"
    if event["type"] in ("tool_call", "tool_result"):
        return f"{event['type']}:{event.get('tool')}"
    return str(event["type"])
