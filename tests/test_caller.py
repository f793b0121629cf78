"""The caller process: answers model requests once, within the account's limits, through faults."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.events import Error, ModelDecided, ModelRequested
from agent.model import ModelCall, ModelRequest
from agent.thread import Status, Thread
from bot.model import queue as model_queue
from bot.model.caller import Caller
from bot.model.rate_limit import RateLimit
from bot.runtime import Runtime
from bot.settings import Settings
from bot.work.worker import advance_thread
from tests.answering import advance_and_answer
from tests.fake_anthropic import FakeAnthropic, RecordedRequest, Reply, error_reply, tool_use_reply
from tests.services import OUTERLOOP_CALLER, Workers, wait_for


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def with_api(env: dict[str, str], fake: FakeAnthropic, **more: str) -> dict[str, str]:
    return {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url, **more}


def runtime_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Runtime.from_settings(Settings())


def decisions(thread: Thread) -> list[ModelDecided]:
    return [e for e in thread.events if isinstance(e, ModelDecided)]


def test_429_and_529_wait_as_the_api_says_and_are_not_model_errors(
    env: dict[str, str], fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_for(with_api(env, fake), monkeypatch)
    fake.script(
        error_reply(429, "rate_limit_error", "Slow down", {"retry-after-ms": "50"}),
        tool_use_reply("note", {"text": "hi"}),
        error_reply(529, "overloaded_error", "Overloaded", {"retry-after": "0.05"}),
        tool_use_reply("done_for_now", {"message": "noted"}),
    )
    thread_id = rt.launch("notes", "hi").thread.id

    thread = advance_and_answer(rt, thread_id)

    assert thread is not None and thread.status is Status.DONE
    assert not [e for e in thread.events if isinstance(e, Error)], "retried, not counted as errors"
    first, second = decisions(thread)
    assert (first.tool, second.tool) == ("note", "done_for_now")
    assert (first.model, first.stop_reason, first.usage.input_tokens, first.usage.output_tokens) == (
        "claude-test",
        "tool_use",
        100,
        20,
    )
    assert first.latency >= 0.05, "the wait the API asked for is part of the call"
    assert len(fake.requests) == 4


def test_retries_that_run_out_become_one_model_error(
    env: dict[str, str], fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime_for(with_api(env, fake, OUTERLOOP_MODEL_RETRIES="1"), monkeypatch)
    fake.script(*[error_reply(529, "overloaded_error", "Overloaded", {"retry-after-ms": "10"})] * 2)
    thread_id = rt.launch("notes", "hi").thread.id
    advance_thread(rt, thread_id)

    asyncio.run(Caller(rt).answer_waiting())

    thread = rt.load(thread_id)
    [error] = [e for e in thread.events if isinstance(e, Error)]
    assert error.source == "model" and "529: Overloaded" in error.message
    assert thread.consecutive_errors == 1 and thread.deciding is not None, "the caller asks again"
    assert thread.events[-1].type == "model_requested"
    assert model_queue.is_waiting(rt.connection, thread_id), "back in the queue, for any caller"
    assert len(fake.requests) == 2


def test_a_429_holds_every_caller_on_the_key_and_the_bucket_limits_the_rate(runtime: Runtime) -> None:
    one, other = (RateLimit(runtime.connection, "acct", per_minute=60, burst=2) for _ in range(2))
    assert one.take() == 0 and other.take() == 0
    assert 0 < one.take() <= 1, "the burst is spent: the next token comes in a second"

    free = RateLimit(runtime.connection, "free", per_minute=0)
    assert free.take() == 0
    free.hold(30)
    assert 29 < RateLimit(runtime.connection, "free", per_minute=0).take() <= 30


class Together:
    """An async model whose calls all answer only once ``count`` of them are in flight."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.requests: list[ModelRequest] = []
        self.all_asked = asyncio.Event()

    async def decide(self, request: ModelRequest) -> ModelCall:
        self.requests.append(request)
        if len(self.requests) == self.count:
            self.all_asked.set()
        await self.all_asked.wait()
        return ModelCall("note", {"text": f"answer {len(self.requests)}"})


def test_two_callers_racing_for_one_request_record_one_decision(runtime: Runtime) -> None:
    thread_id = runtime.launch("notes", "hi").thread.id
    advance_thread(runtime, thread_id)
    first, second = Caller(runtime), Caller(runtime)

    claims = [model_queue.claim(runtime.connection, c.holder, 10) for c in (first, second)]
    assert sorted(claims, key=len) == [[], [thread_id]], "one claim"
    holder, other = (first, second) if claims[0] else (second, first)
    # The holder is taken for gone (its claim goes back, as the sweep does), and both answer.
    assert model_queue.release(runtime.connection, thread_id, holder.holder, again=True)
    assert model_queue.claim(runtime.connection, other.holder, 10) == [thread_id]

    async def both() -> Together:
        model = Together(2)
        spec = runtime.agents.get("notes")
        holder.models[spec.name] = other.models[spec.name] = model
        await asyncio.gather(holder.answer(thread_id), other.answer(thread_id))
        return model

    model = asyncio.run(both())

    thread = runtime.load(thread_id)
    assert len(model.requests) == 2 and len(decisions(thread)) == 1, "asked twice, recorded once"
    assert thread.decided is not None and thread.deciding is None
    assert model_queue.waiting(runtime.connection) == 0


@pytest.fixture
def asking(env: dict[str, str], fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, str]:
    """A runtime on the fake Messages API, whose first answer takes 2 s, and a thread that asked."""
    rt = runtime_for(with_api(env, fake), monkeypatch)
    fake.script(
        Reply(**{**vars(tool_use_reply("note", {"text": "lost"})), "delay": 2.0}),
        tool_use_reply("note", {"text": "hi"}),
        tool_use_reply("done_for_now", {"message": "noted"}),
    )
    thread_id = rt.launch("notes", "hi").thread.id
    advance_thread(rt, thread_id)
    return rt, thread_id


@pytest.fixture
def callers(env: dict[str, str], fake: FakeAnthropic, tmp_path: Path) -> Iterator[Workers]:
    """``outerloop caller`` processes on the fake Messages API; the first one is mid-call."""
    pool = Workers(with_api(env, fake), tmp_path / "callers.log")
    pool.start(1, args=OUTERLOOP_CALLER)
    wait_for(lambda: len(fake.requests) == 1, "the first caller's model call")
    yield pool
    pool.stop_all()


def test_a_caller_killed_mid_call_is_taken_over_once_it_is_known_gone(
    asking: tuple[Runtime, str], callers: Workers, fake: FakeAnthropic
) -> None:
    rt, thread_id = asking
    callers.kill(callers.callers[0])
    callers.start(1, args=OUTERLOOP_CALLER)
    wait_for(lambda: decisions(rt.load(thread_id)), "the other caller's answer", timeout=30)
    callers.stop_all()

    done = advance_and_answer(rt, thread_id)
    assert done is not None and done.status is Status.DONE
    assert [d.arguments for d in decisions(done)] == [{"text": "hi"}, {"message": "noted"}]
    assert len(fake.requests) == 3, "the killed call was asked again once, nothing else twice"


def test_a_caller_stopped_with_sigterm_gives_its_requests_back_at_once(
    asking: tuple[Runtime, str], callers: Workers
) -> None:
    rt, thread_id = asking
    [stopped] = callers.callers
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(timeout=15) == 0

    assert rt.connection.zscore(model_queue.ASKING, thread_id) is not None, "queued again, held by nobody"
    asyncio.run(Caller(rt).answer_waiting())
    assert [d.arguments for d in decisions(rt.load(thread_id))] == [{"text": "hi"}]


def test_threads_run_from_launch_to_done_with_workers_and_callers_as_processes(
    runtime: Runtime, workers: Workers, deploy_log: Path
) -> None:
    ids = [runtime.launch("deploy", "ship the latest").thread.id for _ in range(4)]
    workers.start(2, args=OUTERLOOP_CALLER)
    workers.start(2)

    def all_in(status: Status) -> list[Thread] | None:
        threads = [runtime.load(thread_id) for thread_id in ids]
        return threads if all(t.status is status for t in threads) else None

    for thread in wait_for(lambda: all_in(Status.AWAITING_HUMAN), "every approval request", 60):
        assert thread.pending is not None
        runtime.respond(thread.id, thread.pending.request_id, "alice", approved=True)
    for thread in wait_for(lambda: all_in(Status.DONE), "every deploy", 60):
        asked = [e.request_id for e in thread.events if isinstance(e, ModelRequested)]
        answered = Counter(d.request_id for d in decisions(thread))
        assert len(asked) == 3 and answered == Counter(asked), "each request answered exactly once"
    assert len(deploy_log.read_text().splitlines()) == 4
    assert model_queue.waiting(runtime.connection) == 0


def agent_of(request: RecordedRequest) -> str:
    """The agent that asked: each test agent's prompt names it."""
    found = re.search(r"You are agent (\w+)\.", json.dumps(request.body.get("system")))
    assert found, "the request carries the agent's prompt"
    return found.group(1)


def test_calls_in_flight_are_limited_per_agent_and_per_model_the_agent_asks_for(
    env: dict[str, str], fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three agents on one model and one on another, limited to 2 calls a model and 1 an agent:
    one model's calls wait for that model alone, and an agent's for that agent alone."""
    models = {"a1": "claude-x", "a2": "claude-x", "a3": "claude-x", "b1": "claude-y"}
    for agent, model in models.items():
        folder = tmp_path / "agents" / agent
        folder.mkdir(parents=True)
        (folder / "agent.toml").write_text(f'description = "Agent {agent}."\n[model]\nname = "{model}"\n')
        (folder / "prompt.md").write_text(f"You are agent {agent}. Say you are done.\n")
    limits = {"OUTERLOOP_MODEL_CONCURRENCY": "2", "OUTERLOOP_AGENT_CONCURRENCY": "1"}
    caller_env = with_api(env, fake, OUTERLOOP_AGENTS_DIR=str(tmp_path / "agents"), **limits)
    rt = runtime_for(caller_env, monkeypatch)
    fake.script(*[tool_use_reply("done_for_now", {"message": "done"})] * 12)
    fake.hold()
    by_model = lambda request: str(request.body["model"])  # noqa: E731
    callers = Workers(caller_env, tmp_path / "callers.log")
    try:
        callers.start(1, args=OUTERLOOP_CALLER)
        # a1's three calls are taken first: a caller that let the two waiting for a1 hold
        # claude-x's slots would keep a2 and a3 waiting behind them.
        ids = [rt.launch("a1", "go").thread.id for _ in range(3)]
        wait_for(lambda: fake.in_flight(agent_of)[0] == {"a1": 1}, "a1's first call")
        wait_for(lambda: rt.connection.hlen(model_queue.CLAIMS) == 3, "a1's calls all taken")
        ids += [rt.launch(agent, "go").thread.id for agent in ("a2", "a3", "b1") for _ in range(3)]
        wait_for(lambda: fake.in_flight(by_model)[0] == {"claude-x": 2, "claude-y": 1}, "both models full")
        fake.let_go()
        wait_for(lambda: all(rt.load(thread_id).status is Status.DONE for thread_id in ids), "all done", 60)
    finally:
        fake.let_go()
        callers.stop_all()

    assert fake.in_flight(by_model)[1] == {"claude-x": 2, "claude-y": 1}
    assert fake.in_flight(agent_of)[1] == dict.fromkeys(models, 1)
    assert len(fake.requests) == 12
