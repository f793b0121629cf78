"""``python -m bench inflight``: many conversations waiting on a slow model at once (issue 11).

Each conversation needs two model calls that take ``delay`` seconds (a local Messages API
server that waits before answering): the ``two_steps`` bench agent calls ``do_nothing``, then
finishes. Outerloop runs them with ``outerloop worker`` processes and one ``outerloop caller``;
next to it, in the same run and against the same server, one asyncio process (``reference``)
makes the same calls with ``AsyncAnthropic``. Reported: time until every conversation is done,
and the summed memory (PSS) of all Outerloop processes at their peak.

The server counts the calls per conversation and step, so the report can say that every
conversation finished and that no model call was made twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import redis

from agent.thread import Status
from bench.subjects import AGENTS
from bot.runtime import QUEUE, Runtime
from bot.settings import Settings
from bot.state import liveness
from bot.state.store import key
from tests.fake_anthropic import message, tool_use_block
from tests.local_server import LocalServer, QuietHandler
from tests.services import OUTERLOOP_CALLER, REPO, RedisServer, Workers, wait_for

AGENT = "two_steps"
WORKER_PROCESSES = 2
"""Processes per ``outerloop worker`` (its default)."""
PROMPT = "conversation {n}"


class SlowMessages(LocalServer):
    """``POST /v1/messages`` that waits ``delay`` seconds, then answers the first call of a
    conversation with ``do_nothing`` and the second with ``done_for_now``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: Counter[tuple[str, int]] = Counter()
        """Calls per (conversation, step)."""
        self._lock = threading.Lock()
        super().__init__(partial(_Handler, self), "slow-messages")
        self._server.socket.listen(4096)  # hundreds connect at once: no SYN may wait for a retry

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        context = str(body["messages"][0]["content"])
        found = re.search(r"conversation \d+", context)
        conversation = found.group() if found else "?"
        step = 2 if "<tool_result" in context else 1
        with self._lock:
            self.calls[(conversation, step)] += 1
        block = (
            tool_use_block("do_nothing", {})
            if step == 1
            else tool_use_block("done_for_now", {"message": "ok"})
        )
        return message(block)


class _Handler(QuietHandler):
    def __init__(self, server: SlowMessages, *args: Any, **kwargs: Any) -> None:
        self.slow = server
        super().__init__(*args, **kwargs)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
        time.sleep(self.slow.delay)
        self.reply(200, json.dumps(self.slow.answer(body)).encode(), "application/json", {})


@dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    memory_mb: float
    """Summed PSS of the processes at the peak (the reference: its own)."""
    done: int
    conversations: int
    calls: int
    repeated: int
    """Model calls made more than once for one conversation and step."""


def measure(conversations: int, delay: float, workers: int, callers: int = 1) -> list[Run]:
    """The reference, then Outerloop, against one server."""
    with SlowMessages(delay) as server:
        reference = _reference(server, conversations)
        server.calls.clear()
        outerloop = _outerloop(server, conversations, workers, callers)
    return [reference, outerloop]


def _reference(server: SlowMessages, conversations: int) -> Run:
    command = [sys.executable, "-m", "bench.inflight", server.origin, str(conversations)]
    out = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True).stdout
    seconds, memory = json.loads(out)
    return _run("one asyncio process, AsyncAnthropic", seconds, memory, conversations, conversations, server)


def _outerloop(server: SlowMessages, conversations: int, workers: int, callers: int) -> Run:
    with TemporaryDirectory(prefix="outerloop-inflight-") as directory:
        redis_server = RedisServer(Path(directory), durable=False)
        redis_server.start()
        env = _env(redis_server.url, server.origin, conversations)
        pool = Workers(env)
        try:
            settings = Settings(redis_url=redis_server.url, agents=AGENTS, anthropic_api_key=None)
            runtime = Runtime.from_settings(settings)
            pids = [caller.pid for caller in pool.start(callers, args=OUTERLOOP_CALLER)]
            pool.start(workers)
            # The reference does not count its start either (nor its import of the SDK).
            wait_for(lambda: _ready(runtime.connection, workers, pids), "the processes", timeout=120)
            started = time.monotonic()
            ids = [runtime.launch(AGENT, PROMPT.format(n=n)).thread.id for n in range(conversations)]
            peak = _wait_all_done(runtime.connection, ids, pool)
            seconds = time.monotonic() - started
            done = sum(runtime.load(thread_id).status is Status.DONE for thread_id in ids)
        finally:
            pool.stop_all()
            redis_server.stop()
    label = f"Outerloop, {workers} worker{'s' * (workers > 1)} + {callers} caller{'s' * (callers > 1)}"
    return _run(label, seconds, peak, done, conversations, server)


def _ready(connection: redis.Redis, workers: int, callers: list[int]) -> bool:
    """Whether every worker process waits for jobs and every caller for requests: RQ lists a
    worker once it is in its loop; a caller vouches for itself once it built its models."""
    working = int(connection.scard(f"rq:workers:{QUEUE}"))
    alive = [
        key("alive", f"{socket.gethostname()}:{pid}".replace(liveness.SEPARATOR, "_")) for pid in callers
    ]
    return working >= workers * WORKER_PROCESSES and connection.exists(*alive) == len(alive)


def _run(
    label: str, seconds: float, memory: float, done: int, conversations: int, server: SlowMessages
) -> Run:
    calls = sum(server.calls.values())
    repeated = sum(count - 1 for count in server.calls.values() if count > 1)
    return Run(label, seconds, memory, done, conversations, calls, repeated)


def _wait_all_done(connection: redis.Redis, ids: list[str], pool: Workers) -> float:
    """Wait until every thread is done, sampling the processes' memory; returns the peak, in MB."""
    peak = 0.0
    done_key = "ol:by-status:done"

    def finished() -> bool:
        nonlocal peak
        peak = max(peak, sum(_pss(pid) for pid in _tree(pool)))
        return int(connection.zcard(done_key)) >= len(ids)

    wait_for(finished, "every conversation to finish", timeout=600)
    return peak


def _tree(pool: Workers) -> list[int]:
    pids = []
    for process in pool.processes:
        pids.append(process.pid)
        pids.extend(_children(process.pid))
    return pids


def _children(pid: int) -> list[int]:
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
    return [p for child in children for p in (child, *_children(child))]


def _pss(pid: int | str) -> float:
    """A process's proportional set size in MB (0 for a process that is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def _env(redis_url: str, api_url: str, conversations: int) -> dict[str, str]:
    room = str(max(conversations, 100))
    return {
        "REDIS_URL": redis_url,
        "OUTERLOOP_AGENTS": AGENTS,
        "ANTHROPIC_API_KEY": "bench-key",
        "ANTHROPIC_BASE_URL": api_url,
        "OUTERLOOP_MODEL_CONCURRENCY": room,
        "OUTERLOOP_AGENT_CONCURRENCY": room,
        "OUTERLOOP_CALLER_CAPACITY": room,
        "OUTERLOOP_LOG_FORMAT": "json",
    }


def table(runs: list[Run], delay: float) -> str:
    columns = f"{'convs':>5} {'done':>5} {'calls':>5} {'twice':>5} {'time s':>7} {'x ref':>6} {'MB PSS':>7}"
    lines = [f"{'setup':<42} {columns}"]
    for index, run in enumerate(runs):
        reference = runs[index - index % 2]  # ``measure`` gives the reference, then Outerloop
        ratio = run.seconds / reference.seconds if reference.seconds else float("nan")
        lines.append(
            f"{run.label:<42} {run.conversations:>5} {run.done:>5} {run.calls:>5} {run.repeated:>5} "
            f"{run.seconds:>7.2f} {ratio:>6.2f} {run.memory_mb:>7.0f}"
        )
    lines.append(
        f"2 model calls per conversation, {delay:g} s each; targets: <= 1.5x the reference, < 500 MB"
    )
    return "\n".join(lines)


async def _reference_calls(url: str, conversations: int) -> float:
    import anthropic

    client = anthropic.AsyncAnthropic(api_key="bench-key", base_url=url, max_retries=0, timeout=600)

    async def conversation(n: int) -> None:
        context = f"<api_message>{PROMPT.format(n=n)}</api_message>"
        for _ in range(2):
            reply = await client.messages.create(
                model="claude-bench", max_tokens=64, messages=[{"role": "user", "content": context}]
            )
            context += f"<tool_result>{reply.content[0].type}</tool_result>"

    started = time.monotonic()
    await asyncio.gather(*(conversation(n) for n in range(conversations)))
    return time.monotonic() - started


def _main() -> None:
    """The reference process: ``python -m bench.inflight URL CONVERSATIONS``; prints [seconds, MB]."""
    seconds = asyncio.run(_reference_calls(sys.argv[1], int(sys.argv[2])))
    sys.stdout.write(json.dumps([seconds, _pss(os.getpid())]) + "\n")


if __name__ == "__main__":
    _main()
