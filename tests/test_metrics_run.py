"""``GET /metrics`` after a scripted run on real processes: ``outerloop web``, an ``outerloop
worker`` pool of two processes and ``outerloop caller``, sharing one PROMETHEUS_MULTIPROC_DIR,
the model played by the fake Messages API. Counts are checked exactly, and against what the
fake reported; a killed pool process neither breaks the scrape nor loses what it counted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.runtime import Runtime
from tests.agents import RELEASE_KEY
from tests.fake_anthropic import FakeAnthropic, Reply, message, tool_use_block
from tests.metrics_helpers import Samples, parse, scrape, value
from tests.services import (
    OUTERLOOP_CALLER,
    OUTERLOOP_WORKER,
    Workers,
    children_of,
    cli_args,
    free_port,
    wait_for,
)

METRICS_TOKEN = "metrics-scraper-token"
THREADS = 3


@dataclass
class Stack:
    base: str
    workers: Workers
    fake: FakeAnthropic
    metrics_dir: Path
    redis_url: str

    def launch(self, agent: str, text: str) -> str:
        response = httpx.post(
            f"{self.base}/threads",
            json={"agent": agent, "text": text},
            headers={"Authorization": "Bearer test-token"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        thread_id: str = response.json()["id"]
        return thread_id

    def thread(self, thread_id: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base}/threads/{thread_id}", headers={"Authorization": "Bearer test-token"}, timeout=10
        )
        body: dict[str, Any] = response.json()
        return body

    def scrape(self) -> Samples:
        return scrape(self.base, METRICS_TOKEN)


@pytest.fixture
def stack(env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    with FakeAnthropic() as fake:
        shared = {
            **env,
            "ANTHROPIC_API_KEY": "test-key",
            "ANTHROPIC_BASE_URL": fake.base_url,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "OUTERLOOP_METRICS_TOKEN": METRICS_TOKEN,
            "PORT": str(port),
        }
        workers = Workers(shared, tmp_path / "processes.log")
        try:
            workers.start(1, args=cli_args("web"))
            workers.start(1, args=(*OUTERLOOP_WORKER, "--processes", "2"))
            workers.start(1, args=OUTERLOOP_CALLER)
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(f"{base}/healthz"), "outerloop web", timeout=60)
            yield Stack(base, workers, fake, metrics_dir, env["REDIS_URL"])
        finally:
            workers.stop_all()
            print((tmp_path / "processes.log").read_text())


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def reply(name: str, arguments: dict[str, Any], usage: dict[str, int]) -> Reply:
    """A tool call from the fake model, reporting ``usage``."""
    return Reply(200, {**message(tool_use_block(name, arguments)), "usage": usage})


def usage(n: int) -> dict[str, int]:
    """Token counts that differ per call, so a call counted twice or lost shows in the sums."""
    return {
        "input_tokens": 1000 + n,
        "output_tokens": 10 + n,
        "cache_read_input_tokens": 100 * n,
        "cache_creation_input_tokens": 7 * n,
    }


def wait_done(stack: Stack, thread_id: str) -> dict[str, Any]:
    return wait_for(
        lambda: (t := stack.thread(thread_id))["status"] == "done" and t, f"thread {thread_id} done", 60
    )


def test_a_scripted_run_is_counted_exactly_across_processes(stack: Stack) -> None:
    reported: list[dict[str, int]] = []
    for n in range(THREADS):
        first, second = usage(2 * n), usage(2 * n + 1)
        reported += [first, second]
        stack.fake.script(
            reply("note", {"text": f"note {n}"}, first),
            reply("done_for_now", {"message": f"noted {n}"}, second),
        )
        wait_done(stack, stack.launch("notes", f"write down {n}"))  # one at a time: the replies go in order

    samples = stack.scrape()

    assert value(samples, "outerloop_threads_started_total", agent="notes", channel="api") == THREADS
    assert value(samples, "outerloop_threads_finished_total", agent="notes", status="done") == THREADS
    assert value(samples, "outerloop_threads_finished_total", agent="notes", status="failed") == 0
    assert value(samples, "outerloop_tool_calls_total", tool="note", outcome="ok") == THREADS
    assert value(samples, "outerloop_tool_seconds_count", tool="note") == THREADS
    assert value(samples, "outerloop_model_calls_total", agent="notes", model="claude-test") == 2 * THREADS
    assert value(samples, "outerloop_model_seconds_count", model="claude-test") == 2 * THREADS
    for kind, field in (
        ("input", "input_tokens"),
        ("output", "output_tokens"),
        ("cache_read", "cache_read_input_tokens"),
        ("cache_write", "cache_creation_input_tokens"),
    ):
        counted = value(
            samples, "outerloop_model_tokens_total", agent="notes", model="claude-test", kind=kind
        )
        assert counted == sum(call[field] for call in reported), kind
    # Each thread: ask, act on "note" and run it, ask again, act on "done_for_now".
    assert value(samples, "outerloop_steps_total", agent="notes") == 4 * THREADS
    assert value(samples, "outerloop_step_seconds_count", agent="notes") == 4 * THREADS
    assert value(samples, "outerloop_threads", status="done") == THREADS
    assert value(samples, "outerloop_queue_depth", queue="advance") == 0
    assert value(samples, "outerloop_redis_up") == 1
    # The counts came from several processes: the web app, the caller and the pool's processes.
    writers = {path.stem.rsplit("_", 1)[-1] for path in stack.metrics_dir.glob("counter_*.db")}
    assert len(writers) >= 3, writers


def test_metrics_need_the_scrapers_token_or_an_api_credential(stack: Stack) -> None:
    url = f"{stack.base}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer test-token"}, timeout=10).status_code == 200
    assert httpx.get(f"{stack.base}/openapi.json", timeout=10).json()["paths"].get("/metrics") is None


def test_a_pool_process_killed_mid_job_keeps_its_counts_and_leaves_the_scrape_whole(stack: Stack) -> None:
    stack.fake.script(
        reply("note", {"text": "before"}, usage(1)), reply("done_for_now", {"message": "ok"}, usage(2))
    )
    wait_done(stack, stack.launch("notes", "write down before"))
    stack.fake.script(
        reply("hold", {"text": "on"}, usage(3)), reply("done_for_now", {"message": "ok"}, usage(4))
    )
    held = stack.launch("holds", "hold on")
    wait_for(lambda: value(stack.scrape(), "outerloop_jobs_running", queue="advance") == 1, "the held job")
    before = stack.scrape()
    supervisor = next(p for p in stack.workers.processes if _is_pool(p.pid))
    pool = children_of(supervisor.pid)
    assert len(pool) == 2

    for pid in pool:  # both, so the one running the held job is among them
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _replaced(supervisor.pid, pool), "the pool to replace its killed processes", 30)
    after = stack.scrape()

    # The killed process no longer counts as running; the held thread, queued again, may already
    # run in its replacement, so one job at most.
    assert not [path.name for pid in pool for path in stack.metrics_dir.glob(f"gauge_livesum_{pid}.db")]
    assert value(after, "outerloop_jobs_running", queue="advance") in (0, 1)
    for name, labels, counted in (
        ("outerloop_tool_calls_total", {"tool": "note", "outcome": "ok"}, 1),
        ("outerloop_steps_total", {"agent": "notes"}, 4),
        ("outerloop_threads_finished_total", {"agent": "notes", "status": "done"}, 1),
        ("outerloop_model_calls_total", {"agent": "holds", "model": "claude-test"}, 1),
    ):
        assert value(after, name, **labels) == value(before, name, **labels) == counted, name
    redis.Redis.from_url(stack.redis_url).set(RELEASE_KEY, "1")
    wait_done(stack, held)  # the read-only hold is run again, on another process
    final = stack.scrape()
    assert value(final, "outerloop_tool_calls_total", tool="hold", outcome="ok") == 1
    assert value(final, "outerloop_threads_finished_total", agent="holds", status="done") == 1
    assert value(final, "outerloop_model_calls_total", agent="holds", model="claude-test") == 2


def _is_pool(pid: int) -> bool:
    return b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes()


def _replaced(supervisor: int, killed: list[int]) -> bool:
    now = children_of(supervisor)
    return len(now) == 2 and set(now).isdisjoint(killed)


def test_processes_on_hosts_of_their_own_serve_their_metrics_on_the_metrics_port(
    env: dict[str, str], runtime: Runtime, tmp_path: Path
) -> None:
    worker_port, caller_port = free_port(), free_port()
    with FakeAnthropic() as fake:
        api = {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url}
        log = tmp_path / "processes.log"
        pool = Workers({**api, "OUTERLOOP_METRICS_PORT": str(worker_port)}, log)
        caller = Workers({**api, "OUTERLOOP_METRICS_PORT": str(caller_port)}, log)
        pool.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the worker makes a directory for its pool
        caller.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        try:
            caller.start(1, args=OUTERLOOP_CALLER)
            pool.start(1, args=(*OUTERLOOP_WORKER, "--processes", "2"))
            fake.script(
                reply("note", {"text": "n"}, usage(1)), reply("done_for_now", {"message": "ok"}, usage(2))
            )
            runtime.launch("notes", "write n down")
            # The caller records the last step (done_for_now runs nothing), so its port says so
            answered = wait_for(
                lambda: _finished(f"http://127.0.0.1:{caller_port}"),
                "the thread done, as the caller's port says",
                60,
            )
            worker = _scraped(f"http://127.0.0.1:{worker_port}")
        finally:
            pool.stop_all()
            caller.stop_all()

    assert worker is not None
    # The launch asked the model; the pool ran the note and asked again; the caller recorded done
    assert value(worker, "outerloop_steps_total", agent="notes") == 2  # summed over the pool's processes
    assert value(answered, "outerloop_steps_total", agent="notes") == 1
    assert value(worker, "outerloop_tool_calls_total", tool="note", outcome="ok") == 1
    assert value(worker, "outerloop_model_calls_total", agent="notes", model="claude-test") == 0
    assert value(answered, "outerloop_model_calls_total", agent="notes", model="claude-test") == 2
    tokens = value(answered, "outerloop_model_tokens_total", agent="notes", model="claude-test", kind="input")
    assert tokens == usage(1)["input_tokens"] + usage(2)["input_tokens"]
    assert not [name for name, _ in worker if name == "outerloop_redis_up"]  # the web app's to say


def _scraped(base: str) -> Samples | None:
    try:
        response = httpx.get(f"{base}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    return parse(response.text) if response.status_code == 200 else None


def _finished(base: str) -> Samples | None:
    samples = _scraped(base)
    done = samples and value(samples, "outerloop_threads_finished_total", agent="notes", status="done")
    return samples if done == 1 else None
