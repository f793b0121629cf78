"""Advancing threads through real RQ worker processes and a real Redis."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from agent.definition import AgentSpec, Registry
from agent.events import Done, Error, Failed, Origin, ToolCall, Trigger
from agent.thread import Status, Thread
from bot.agents.deploy import HERE as DEPLOY
from bot.runtime import Runtime
from bot.settings import Settings
from bot.work.worker import prepare
from tests.agents import NOTES_KEY
from tests.answering import advance_and_answer
from tests.services import Workers, cli_args, wait_for


def settled(runtime: Runtime, thread_id: str, status: Status) -> Thread | None:
    thread = runtime.store.load(thread_id)
    return thread if thread.status is status else None


def message(text: str) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="test", sender="tester"))


def test_a_thread_advances_in_process_to_an_approval_and_then_to_done(
    runtime: Runtime, deploy_log: Path
) -> None:
    thread_id = runtime.launch("deploy", "ship the latest").thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None
    runtime.respond(thread_id, thread.pending.request_id, "alice", approved=True)
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.1.0", "staging"]


def test_a_busy_thread_is_left_to_its_holder_who_runs_again(runtime: Runtime) -> None:
    from bot.state.liveness import Holder
    from bot.state.lock import ThreadLock

    thread_id = runtime.launch("notes", "first").thread.id
    holder = ThreadLock(runtime.connection, thread_id, Holder.here(), ttl=5)
    assert holder.acquire()
    assert advance_and_answer(runtime, thread_id) is None  # busy: marks the thread wanted
    assert holder.release_or_continue() is True  # so the holder must run again
    assert holder.release_or_continue() is False
    holder.__exit__(None, None, None)


def test_an_unknown_agent_fails_the_thread_with_the_reason(runtime: Runtime) -> None:
    runtime.store.create("orphan", "retired-agent", message("hello"))
    thread = advance_and_answer(runtime, "orphan")
    assert thread is not None and thread.status is Status.FAILED
    assert "retired-agent" in thread.events[-1].model_dump()["reason"]


def test_two_workers_racing_on_one_thread_apply_every_event_once_in_order(
    runtime: Runtime, workers: Workers
) -> None:
    workers.start(2)
    thread_id = runtime.launch("notes", "m0").thread.id
    texts = [f"m{number}" for number in range(1, 15)]
    for text in texts:
        runtime.submit(thread_id, message(text))
        time.sleep(0.01)
    thread = wait_for(lambda: settled(runtime, thread_id, Status.DONE), "the thread to finish", timeout=30)
    triggers = [e.text for e in thread.events if isinstance(e, Trigger)]
    assert triggers == ["m0", *texts]
    assert not [e for e in thread.events if isinstance(e, Error)], "no overlapping tool runs"
    last_done = max(i for i, e in enumerate(thread.events) if isinstance(e, Done))
    assert isinstance(thread.events[last_done], Done)
    assert thread.events[last_done].basis is not None
    assert thread.events[last_done].basis > max(
        i for i, e in enumerate(thread.events) if isinstance(e, Trigger)
    )
    notes = [raw.decode() for raw in runtime.connection.lrange(NOTES_KEY, 0, -1)]
    assert notes == sorted(notes, key=lambda text: int(text[1:])), "notes follow the order of messages"


def test_a_worker_killed_mid_tool_call_does_not_run_the_tool_twice(
    runtime: Runtime, workers: Workers, deploy_log: Path, env: dict[str, str], tagged_repo: Path
) -> None:
    # The deploy hangs on its first run only, so the test can kill the worker inside it.
    slow_deploy = f"sh -c 'echo {{tag}} >> {deploy_log}; [ $(wc -l < {deploy_log}) -gt 1 ] || sleep 60'"
    workers.env["OUTERLOOP_DEPLOY_COMMAND"] = slow_deploy
    workers.start(1)
    thread_id = runtime.launch("deploy", "ship the latest").thread.id
    thread = wait_for(lambda: settled(runtime, thread_id, Status.AWAITING_HUMAN), "the approval request")
    assert thread.pending is not None
    runtime.respond(thread_id, thread.pending.request_id, "alice", approved=True)
    wait_for(lambda: deploy_log.exists() and deploy_log.read_text(), "the deploy to start")

    workers.kill_all()
    workers.start(1)
    workers.start(
        1, args=cli_args("scheduler")
    )  # sweeps for stalled threads once the dead one's lock expires
    recovered = wait_for(
        lambda: settled(runtime, thread_id, Status.AWAITING_HUMAN), "the recovery", timeout=30
    )
    interrupted = [e for e in recovered.events if isinstance(e, Error) and e.source == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].tool == "deploy"
    assert deploy_log.read_text().splitlines() == ["v1.1.0"], "the deploy ran once"
    assert recovered.pending is not None and recovered.pending.kind == "approval"

    runtime.respond(thread_id, recovered.pending.request_id, "alice", approved=True)
    done = wait_for(lambda: settled(runtime, thread_id, Status.DONE), "the approved re-run")
    assert deploy_log.read_text().splitlines() == ["v1.1.0", "v1.1.0"]
    assert sum(isinstance(e, ToolCall) and e.tool == "deploy" for e in done.events) == 2


def test_pause_stops_a_thread_and_resume_continues_it(runtime: Runtime) -> None:
    thread_id = runtime.launch("deploy", "ship the latest").thread.id
    runtime.pause(thread_id, "alice", "wait for the freeze to end")
    paused = advance_and_answer(runtime, thread_id)
    assert paused is not None and paused.status is Status.PAUSED
    # The request made at launch is answered, but nothing acts on the answer while paused
    assert [e.type for e in paused.events] == ["trigger", "model_requested", "paused", "model_decided"]
    runtime.resume(thread_id, "alice")
    resumed = advance_and_answer(runtime, thread_id)
    assert resumed is not None and resumed.status is Status.AWAITING_HUMAN


def test_workers_recover_a_thread_whose_worker_vanished(runtime: Runtime, workers: Workers) -> None:
    thread_id = runtime.launch("notes", "hello").thread.id
    runtime.queue.empty()  # as if the worker that took the job died with it
    time.sleep(runtime.settings.lock_ttl)
    workers.start(1)
    wait_for(lambda: settled(runtime, thread_id, Status.DONE), "the recovered thread to finish")


def test_redis_connection_is_real(redis_url: str) -> None:
    assert redis.Redis.from_url(redis_url).ping()


def test_prepare_renders_each_agents_request_builds_no_model_and_stores_nothing(runtime: Runtime) -> None:
    prepare(runtime)

    assert runtime.models == {}, "workers never ask the model: callers do"
    assert runtime.connection.keys("*") == []


def test_an_agent_without_a_model_fails_its_thread_once_saying_what_to_set(settings: Settings) -> None:
    scriptless = AgentSpec(name="scriptless", description="no script", prompt=DEPLOY / "prompt.md")
    rt = Runtime(settings, redis.Redis.from_url(settings.require_redis_url()), Registry([scriptless]))
    prepare(rt)
    thread_id = rt.launch("scriptless", "hello").thread.id

    thread = advance_and_answer(rt, thread_id)

    assert thread is not None and thread.status is Status.FAILED
    (failed,) = [e for e in thread.events if isinstance(e, Failed)]
    assert "ANTHROPIC_API_KEY" in failed.reason
    assert not [e for e in thread.events if isinstance(e, Error)], "no model was asked"
    assert advance_and_answer(rt, thread_id) == thread, "failed once, not retried"
