"""``outerloop stats``: threads, steps, errors, approvals and cost per agent, from real threads."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from agent.events import Usage, utcnow
from agent.model import ModelCall, ModelRequest
from bot.runtime import Runtime
from bot.settings import Settings
from bot.work.expiry import expire_due
from tests.agents import RUNNING_KEY
from tests.answering import advance_and_answer
from tests.test_cli import outerloop


class Billed:
    """A model that answers with the calls it is given, each naming its model and usage as the
    Messages API would."""

    def __init__(self, *calls: ModelCall) -> None:
        self.calls = list(calls)

    def decide(self, request: ModelRequest) -> ModelCall:
        return self.calls.pop(0)


def call(tool: str, arguments: dict[str, str], model: str, **tokens: int) -> ModelCall:
    return ModelCall(tool, arguments, model=model, stop_reason="tool_use", usage=Usage(**tokens))


@pytest.fixture
def rt(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for name, value in {**env, "OUTERLOOP_REQUEST_TTL": "3600", "OUTERLOOP_REQUEST_REMINDERS": "1"}.items():
        monkeypatch.setenv(name, value)
    return Runtime.from_settings(Settings())


def deploys_settled_every_way(rt: Runtime) -> None:
    """Four deploy threads: approved, rejected, timed out after a reminder, and one still waiting."""
    approved, rejected, expiring = (rt.launch("deploy", "deploy v1.0.0").thread.id for _ in range(3))
    for thread_id in (approved, rejected, expiring):
        advance_and_answer(rt, thread_id)
    for thread_id, verdict in ((approved, True), (rejected, False)):
        pending = rt.load(thread_id).pending
        assert pending is not None
        rt.respond(
            thread_id, pending.request_id, "alice", approved=verdict, comment=None if verdict else "no"
        )
        advance_and_answer(rt, thread_id)
    now = utcnow()
    assert [e.outcome for e in expire_due(rt, now + timedelta(hours=2))] == ["reminded"]
    assert [e.outcome for e in expire_due(rt, now + timedelta(hours=4))] == ["timed_out"]
    advance_and_answer(rt, expiring)
    advance_and_answer(rt, rt.launch("deploy", "deploy v1.0.0").thread.id)


def notes_with_tokens(rt: Runtime) -> None:
    """Two notes threads on billed models: one priced, one whose model has no price and whose tool fails."""
    rt.models["notes"] = Billed(
        call("note", {"text": "a"}, "claude-haiku-4-5", input_tokens=1000, output_tokens=100),
        call("done_for_now", {"message": "ok"}, "claude-haiku-4-5", input_tokens=2000, output_tokens=100),
    )
    advance_and_answer(rt, rt.launch("notes", "note a").thread.id)
    rt.models["notes"] = Billed(
        call("note", {"text": "b"}, "claude-next-1", input_tokens=10),
        call("done_for_now", {"message": "failed"}, "claude-next-1", output_tokens=10),
    )
    rt.connection.set(RUNNING_KEY, "held")  # the note tool fails: a tool error
    advance_and_answer(rt, rt.launch("notes", "note b").thread.id)


def test_stats_counts_threads_steps_errors_approvals_and_cost_per_agent(
    rt: Runtime, env: dict[str, str]
) -> None:
    deploys_settled_every_way(rt)
    notes_with_tokens(rt)

    report = json.loads(outerloop("stats", "--json", env=env))

    deploy, notes, total = report["agents"]["deploy"], report["agents"]["notes"], report["total"]
    assert deploy["by_status"] == {"awaiting_human": 1, "done": 3}
    assert (deploy["steps"], deploy["tool_calls"], deploy["tool_errors"]) == (11, 5, 0)
    approvals = deploy["approvals"]
    counts = {name: approvals[name] for name in ("asked", "approved", "rejected", "by_grant", "waiting")}
    assert counts == {"asked": 4, "approved": 1, "rejected": 1, "by_grant": 0, "waiting": 1}
    assert (approvals["timed_out"], approvals["reminded"]) == (1, 1)
    waits = approvals["time_to_answer"]
    assert 0 <= waits["median"] <= waits["p90"]
    assert deploy["usage"]["cost_usd"] == 0.0, "scripted steps use no tokens"

    assert notes["by_status"] == {"done": 2}
    assert (notes["steps"], notes["tool_calls"], notes["tool_errors"]) == (4, 2, 1)
    usage = notes["usage"]
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (4, 3010, 210)
    assert usage["cost_usd"] is None and usage["unpriced_models"] == ["claude-next-1"]
    assert total["threads"] == 6 and total["steps"] == 15 and total["usage"]["cost_usd"] is None

    text = outerloop("stats", env=env)
    assert "deploy: 4 threads (awaiting_human 1, done 3)" in text
    assert "approvals 4: approved 1, rejected 1, by standing approval 0, waiting 1, timed out 1" in text
    assert "notes: 2 threads (done 2)" in text
    assert "steps 4, tool calls 2, tool errors 1" in text
    assert "4 model calls, 3,010 in, 210 out" in text and "cost unknown (no price for claude-next-1)" in text
    assert "all agents: 6 threads" in text


def test_stats_reads_only_the_threads_started_since_and_says_what_since_wants(
    rt: Runtime, env: dict[str, str]
) -> None:
    rt.models["notes"] = Billed(
        *[call("done_for_now", {"message": "ok"}, "claude-haiku-4-5", input_tokens=1_000_000)] * 2
    )
    old, new = (rt.launch("notes", "hi").thread.id for _ in range(2))  # both ask the model at once
    advance_and_answer(rt, new)
    two_days_ago = rt.store.summary(old).created_at - 2 * 86400
    rt.connection.zadd("ol:threads", {old: two_days_ago})  # as if started two days ago

    report = json.loads(outerloop("stats", "--since", "24h", "--json", env=env))
    assert report["total"]["threads"] == 1 and report["total"]["usage"]["cost_usd"] == pytest.approx(1.0)
    assert json.loads(outerloop("stats", "--since", "3d", "--json", env=env))["total"]["threads"] == 2

    refused = outerloop("stats", "--since", "yesterday", env=env, check=False)
    assert "--since wants a number and a unit (d, h or m), such as 7d or 12h" in refused
    assert "Traceback" not in refused
