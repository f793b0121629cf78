"""The floor under ``python -m bench peer``: the deploy thread's hand-offs, with none of Outerloop's
work in them.

The thread moves between the same processes as on Outerloop: the bench's client launches and
approves it, a caller process answers its three model requests, and two RQ jobs on ``outerloop
worker`` run its two tool steps, against a private redis-server writing its AOF with an fsync per
write. But an event is a bare RPUSH of an event-sized string, and each process does only what
passes the thread on: no lock, fence or compare-and-set, no fold, snapshot or index, no prompt or
rendering, no metrics or logs, and the caller is a plain loop rather than asyncio.

Outerloop does all of that on top, so this time per thread is a lower bound for the deploy thread
on this architecture (a caller process, RQ jobs for tool steps, a durable Redis) on this machine:
a target below it cannot be met by making Outerloop's own code faster.
"""

from __future__ import annotations

import os
import signal
import time
from types import FrameType
from typing import cast

import redis
from rq import Queue

from bot.runtime import QUEUE
from bot.state.store import key

EVENT = '{"type":"event","id":"' + "0" * 32 + '","at":"2026-12-01T00:00:00Z","text":"' + "x" * 200 + '"}'
"""An event's size in the log, about what Outerloop stores for one."""
ASKING = key("floor", "asking")
AWAITING = key("floor", "awaiting")
DONE = key("floor", "done")
LAUNCHED = 2
"""Events after a launch: the trigger and the first model request."""
ASKED_AGAIN = 6
"""Events once the first tool step asked the model again."""
FINISHED = 14
"""Events of a whole thread: the trigger, three model requests and three decisions, two tool calls
and their results, the approval request and its answer, and done."""
STEP = "bench.floor.tool_step"
"""``tool_step`` by name: the caller runs this module as ``__main__``, whose functions RQ refuses."""
CALLER = ("-m", "bench.floor")
"""The caller process's arguments to Python."""
IDLE = 0.002
"""Seconds the caller sleeps when nothing is asking."""
POLL = 0.005
"""Seconds between the client's looks for threads that wait on an approval, as in bench.peer."""


def log(thread_id: str) -> str:
    return key("floor", "thread", thread_id)


def launch(connection: redis.Redis, thread_id: str) -> None:
    pipe = connection.pipeline(transaction=False)
    pipe.rpush(log(thread_id), EVENT, EVENT)
    pipe.zadd(ASKING, {thread_id: time.time()})
    pipe.execute()


def tool_step(thread_id: str) -> None:
    """The RQ job: read the log, record the call, its result and a new model request."""
    connection = _connection()
    connection.lrange(log(thread_id), 0, -1)
    # The call is on record before the tool runs and its result after: two round trips, as
    # running a tool once needs.
    connection.rpush(log(thread_id), EVENT)
    connection.rpush(log(thread_id), EVENT)
    pipe = connection.pipeline(transaction=False)
    pipe.rpush(log(thread_id), EVENT)
    pipe.zadd(ASKING, {thread_id: time.time()})
    pipe.execute()


_worker_connection: redis.Redis | None = None


def _connection() -> redis.Redis:
    global _worker_connection
    if _worker_connection is None:
        _worker_connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _worker_connection


def answer(connection: redis.Redis, queue: Queue, thread_id: str) -> None:
    """The caller's part: read the log, record the decision, and pass the thread on as the
    decision says (a tool step to a worker, an approval request to people, or done)."""
    length = len(connection.lrange(log(thread_id), 0, -1))
    connection.rpush(log(thread_id), EVENT)
    if length == LAUNCHED:
        queue.enqueue(STEP, thread_id, result_ttl=60)
        return
    pipe = connection.pipeline(transaction=False)
    pipe.rpush(log(thread_id), EVENT)
    pipe.zadd(AWAITING if length == ASKED_AGAIN else DONE, {thread_id: time.time()})
    pipe.execute()


def approve_waiting(connection: redis.Redis, queue: Queue) -> None:
    """The client's part: answer every approval request and queue the tool step it lets run."""
    for raw in cast(list[bytes], connection.zrange(AWAITING, 0, -1)):
        thread_id = raw.decode()
        if connection.zrem(AWAITING, thread_id):
            connection.rpush(log(thread_id), EVENT)
            queue.enqueue(STEP, thread_id, result_ttl=60)


def run_threads(connection: redis.Redis, count: int, timeout: float) -> int:
    """Launch ``count`` threads, approve each as it asks until all are done; returns how many
    ended with their whole log."""
    queue = Queue(QUEUE, connection=connection)
    connection.delete(DONE)
    ids = [f"floor-{time.time_ns()}-{n}" for n in range(count)]
    for thread_id in ids:
        launch(connection, thread_id)
    deadline = time.monotonic() + timeout
    while connection.zcard(DONE) < count and time.monotonic() < deadline:
        approve_waiting(connection, queue)
        time.sleep(POLL)
    return sum(connection.llen(log(thread_id)) == FINISHED for thread_id in ids)


def caller() -> None:
    """Answer the model requests until SIGTERM (``python -m bench.floor``)."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    connection = redis.Redis.from_url(os.environ["REDIS_URL"])
    queue = Queue(QUEUE, connection=connection)
    while not stopping:
        taken = cast(list[tuple[bytes, float]], connection.zpopmin(ASKING, 100))
        if not taken:
            time.sleep(IDLE)
        for raw, _ in taken:
            answer(connection, queue, raw.decode())


if __name__ == "__main__":
    caller()
