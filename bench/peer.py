"""``python -m bench peer``: Outerloop's deploy thread next to the same thread on LangGraph.

The thread: launch, list the tags, ask a human to approve deploying the newest, deploy once
approved, done (the ``deploy`` bench agent; ``bench.langgraph_peer`` builds the same as a
LangGraph graph with ``interrupt()`` for the approval). Both stores are durable: Outerloop's
private redis-server writes its AOF with an fsync per write, LangGraph's ``SqliteSaver``
checkpoints to a file with ``durability="sync"``.

Outerloop runs N threads on ``outerloop worker`` (two worker processes by default, as the pool), launched
at once by a client that approves each as soon as it asks; LangGraph runs the same N one
after the other in one process. Each side's time per thread is its total time over N.

Between them, the floor (``bench.floor``): the same hand-offs between the same kinds of
processes on the same durable Redis, with none of Outerloop's work, which no implementation of
this architecture can beat on this machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import redis

from agent.thread import Status
from bench import floor
from bench.measure import BenchmarkFailed
from bench.subjects import AGENTS, worker_env
from bot.runtime import Runtime
from bot.settings import Settings
from bot.state.store import key
from tests.services import OUTERLOOP_CALLER, OUTERLOOP_WORKER, RedisServer, Workers

POLL = 0.005
"""Seconds between two looks for threads that wait on an approval."""
TIMEOUT_PER_THREAD = 1.0
TARGET = 0.5
"""The most Outerloop's time per thread may be, as a multiple of LangGraph's (the issue's target)."""


@dataclass(frozen=True)
class Side:
    label: str
    seconds: float
    threads: int
    done: int

    @property
    def per_thread(self) -> float:
        return self.seconds / self.threads


@contextmanager
def _on_workers(directory: Path, processes: int, caller: tuple[str, ...]) -> Iterator[str]:
    """A private durable redis-server with ``outerloop worker --processes N`` and one caller
    process (``caller``: its arguments to Python) on it; yields the server's URL."""
    directory.mkdir()
    server = RedisServer(directory, durable=True)
    server.start()
    workers = Workers(worker_env(server.url), args=(*OUTERLOOP_WORKER, "--processes", str(processes)))
    try:
        workers.start(1)
        workers.start(1, args=caller)  # the workers never ask the model: a caller does
        yield server.url
    finally:
        workers.stop_all()
        server.stop()


def outerloop_threads(directory: Path, count: int, processes: int) -> Side:
    with _on_workers(directory, processes, OUTERLOOP_CALLER) as url:
        runtime = Runtime.from_settings(Settings(redis_url=url, agents=AGENTS, anthropic_api_key=None))
        _warm_up(runtime)
        started = time.perf_counter()
        ids = [runtime.launch("deploy", "ship the latest").thread.id for _ in range(count)]
        _approve_until_done(runtime, ids)
        seconds = time.perf_counter() - started
        done = sum(
            runtime.store.load(thread_id).status is Status.DONE
            and runtime.store.load(thread_id).events[-1].type == "done"
            for thread_id in ids
        )
    label = f"Outerloop, outerloop worker --processes {processes}, Redis AOF fsync always"
    return Side(label, seconds, count, done)


def floor_threads(directory: Path, count: int, processes: int) -> Side:
    """The same hand-offs between the same kinds of processes, with none of Outerloop's work
    (``bench.floor``): a lower bound for this architecture on this machine."""
    with _on_workers(directory, processes, floor.CALLER) as url:
        connection = redis.Redis.from_url(url)
        floor.run_threads(connection, 1, timeout=60)  # the workers up and warm, as for Outerloop
        started = time.perf_counter()
        done = floor.run_threads(connection, count, timeout=30 + TIMEOUT_PER_THREAD * count)
        seconds = time.perf_counter() - started
    return Side(f"Floor: the same hand-offs, bare RPUSHes, {processes} processes", seconds, count, done)


def _warm_up(runtime: Runtime) -> None:
    """One thread through, so that the workers are up and warm before the clock starts."""
    [thread_id] = [runtime.launch("deploy", "warm up").thread.id]
    _approve_until_done(runtime, [thread_id], timeout=60)


def _approve_until_done(runtime: Runtime, ids: list[str], timeout: float | None = None) -> None:
    """Approve each thread as soon as it asks, until all are done. The client shares the CPUs
    with the workers, so it looks at the status indexes' sizes and reads their members only
    when they changed (the LangGraph side has no such client)."""
    waiting = set(ids)
    deadline = time.monotonic() + (timeout or 30 + TIMEOUT_PER_THREAD * len(ids))
    indexes = [key("by-status", status.value) for status in (Status.AWAITING_HUMAN, Status.DONE)]
    seen: list[int] = []
    while waiting:
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"{len(waiting)} of {len(ids)} Outerloop threads did not finish")
        pipe = runtime.connection.pipeline(transaction=False)
        for index in indexes:
            pipe.zcard(index)
        sizes = [int(size) for size in pipe.execute()]
        if sizes != seen:
            seen = sizes
            for thread_id in set(runtime.store.ids(Status.AWAITING_HUMAN)) & waiting:
                pending = runtime.store.load(thread_id).pending
                if pending is not None:
                    runtime.respond(thread_id, pending.request_id, "bench", approved=True)
                    seen = []  # it leaves the index as another may enter: the sizes alone can't tell
            waiting -= set(runtime.store.ids(Status.DONE))
        time.sleep(POLL)


def langgraph_threads(directory: Path, count: int) -> Side:
    from bench.langgraph_peer import run_threads

    run_threads(directory / "warm-up.sqlite", 1)
    seconds, done = run_threads(directory / "checkpoints.sqlite", count)
    return Side("LangGraph, SqliteSaver file, durability=sync", seconds, count, done)


def compare(count: int, processes: int) -> tuple[Side, Side, Side]:
    with TemporaryDirectory(prefix="outerloop-peer-") as directory:
        ours = outerloop_threads(Path(directory) / "redis", count, processes)
        least = floor_threads(Path(directory) / "floor", count, processes)
        theirs = langgraph_threads(Path(directory), count)
    for side in (ours, least, theirs):
        if side.done != side.threads:
            raise BenchmarkFailed(f"{side.label}: {side.done} of {side.threads} threads deployed and done")
    return ours, least, theirs


def report(ours: Side, least: Side, theirs: Side, setup: str) -> str:
    ratio, floor_ratio = ours.per_thread / theirs.per_thread, least.per_thread / theirs.per_thread
    met = "met" if ratio <= TARGET else "NOT met"
    below = "below" if floor_ratio > TARGET else "above"
    rows = [
        f"{side.label:64}{side.seconds:>9.2f} s{side.per_thread * 1000:>11.2f} ms"
        for side in (ours, least, theirs)
    ]
    return "\n".join(
        [
            f"The deploy thread (launch, list tags, approval, approve, deploy, done), {ours.threads} threads",
            setup,
            "",
            f"{'':64}{'total':>11}{'per thread':>14}",
            *rows,
            "",
            f"Outerloop / LangGraph per thread: {ratio:.2f}x -> target <= {TARGET}x: {met}",
            f"Floor / LangGraph per thread: {floor_ratio:.2f}x -> the target is {below} the floor",
            f"Outerloop / floor per thread: {ours.per_thread / least.per_thread:.2f}x",
        ]
    )
