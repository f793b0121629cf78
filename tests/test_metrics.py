"""Metrics in one process: the Redis gauges read at scrape time, time to answer, forks, a Redis
outage during a scrape. (Counts across real processes: ``test_metrics_run``.)"""

from __future__ import annotations

import time

import redis
from prometheus_client import REGISTRY

from agent.events import HumanRequest
from bot.metrics.exposition import render
from bot.runtime import Runtime
from bot.state.store import key
from tests.answering import advance_and_answer, queued
from tests.metrics_helpers import parse, value
from tests.services import free_port

WAITED = 600.0
"""Seconds the test makes a request look old."""


def counted(name: str, **labels: str) -> float:
    """This process's count (the test process keeps its metrics in memory)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_queue_depth_threads_and_waiting_requests_are_read_from_redis(runtime: Runtime) -> None:
    for text in ("first", "second"):
        queued(runtime, "notes", text)  # no worker runs here
    runtime.launch("notes", "third")  # asks the model: posted to the callers
    waiting = runtime.load(queued(runtime, "notes", "fourth"))
    runtime.connection.delete(key("queued", waiting.id))  # its job is taken, as a worker would
    runtime.record(waiting, HumanRequest(request_id="r1", kind="question", text="which one?"))
    runtime.connection.hset(key("thread", waiting.id, "meta"), "updated_at", time.time() - WAITED)

    samples = parse(render(runtime.connection).decode())

    assert value(samples, "outerloop_redis_up") == 1
    assert value(samples, "outerloop_queue_depth", queue="advance") == 3
    assert value(samples, "outerloop_queue_depth", queue="deliver") == 0
    assert value(samples, "outerloop_threads", status="running") == 3
    assert value(samples, "outerloop_threads", status="awaiting_human") == 1
    assert value(samples, "outerloop_pending_requests") == 1
    assert WAITED <= value(samples, "outerloop_pending_request_oldest_seconds") < 10 * WAITED
    assert value(samples, "outerloop_model_requests", state="queued") == 1
    assert value(samples, "outerloop_model_requests", state="claimed") == 0


def test_nothing_waiting_reads_as_zero(runtime: Runtime) -> None:
    samples = parse(render(runtime.connection).decode())

    assert value(samples, "outerloop_pending_requests") == 0
    assert value(samples, "outerloop_pending_request_oldest_seconds") == 0
    assert value(samples, "outerloop_model_request_oldest_seconds") == 0


def test_a_scrape_while_redis_is_away_says_so_and_still_answers() -> None:
    gone = redis.Redis(port=free_port(), socket_connect_timeout=1)

    text = render(gone).decode()

    assert value(parse(text), "outerloop_redis_up") == 0
    assert "# TYPE outerloop_threads_started_total counter" in text  # the process's own metrics still


def test_an_approval_is_timed_from_request_to_answer_and_counted_once(runtime: Runtime) -> None:
    labels = {"agent": "deploy", "kind": "approval", "outcome": "approved"}
    before = counted("outerloop_human_answer_seconds_count", **labels)
    thread = advance_and_answer(runtime, runtime.launch("deploy", "deploy v1.0.0 to staging").thread.id)
    assert thread is not None and thread.pending is not None

    runtime.respond(thread.id, thread.pending.request_id, "alice", approved=True)
    advance_and_answer(runtime, thread.id)

    assert counted("outerloop_human_answer_seconds_count", **labels) == before + 1
    assert counted("outerloop_threads_finished_total", agent="deploy", status="done") >= 1


def test_a_fork_counts_as_a_started_thread_and_its_copied_events_are_not_counted_again(
    runtime: Runtime,
) -> None:
    source = advance_and_answer(runtime, runtime.launch("notes", "write this down").thread.id)
    assert source is not None and source.status.value == "done"
    names = (
        ("outerloop_threads_started_total", {"agent": "notes", "channel": "api"}),
        ("outerloop_threads_finished_total", {"agent": "notes", "status": "done"}),
        ("outerloop_tool_calls_total", {"tool": "note", "outcome": "ok"}),
        ("outerloop_model_calls_total", {"agent": "notes", "model": "scripted"}),
    )
    before = {name: counted(name, **labels) for name, labels in names}
    assert all(before.values()), before  # the source was counted

    runtime.fork(source.id, len(source.events))

    after = {name: counted(name, **labels) for name, labels in names}
    started = "outerloop_threads_started_total"
    assert after == {**before, started: before[started] + 1}
