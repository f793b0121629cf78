"""What is compared: a no-op RQ job on plain ``rq worker`` processes and on ``outerloop worker``
processes, and Outerloop threads of one and of two steps."""

from __future__ import annotations

import redis
from rq import Queue
from rq.worker import BaseWorker

from bench.jobs import noop
from bench.measure import Subject
from bot.runtime import QUEUE, Runtime
from bot.settings import Settings
from tests.services import OUTERLOOP_WORKER

RAW_QUEUE = "bench"
AGENTS = "bench.agents:agents"


def noop_on_rq_worker(url: str, connection: redis.Redis, worker_class: type[BaseWorker]) -> Subject:
    """``noop`` enqueued with RQ's defaults, run by ``rq worker`` as ``outerloop worker`` runs RQ."""
    queue = Queue(RAW_QUEUE, connection=connection)
    return Subject(
        label=f"no-op job, rq worker ({worker_class.__name__})",
        queue=RAW_QUEUE,
        submit=lambda: queue.enqueue(noop),
        worker_args=(
            *("-m", "rq.cli", "worker", "--url", url, "--with-scheduler"),
            *("--worker-class", f"{worker_class.__module__}.{worker_class.__qualname__}", RAW_QUEUE),
        ),
        result=None,
    )


def noop_on_outerloop_worker(url: str, connection: redis.Redis) -> Subject:
    """``noop`` run by ``outerloop worker``: what the worker process costs, before our job does anything."""
    queue = Queue(QUEUE, connection=connection)
    return Subject(
        label="no-op job, outerloop worker",
        queue=QUEUE,
        submit=lambda: queue.enqueue(noop),
        worker_args=OUTERLOOP_WORKER,
        result=None,
        worker_env=_outerloop_env(url),
    )


def thread_on_outerloop_worker(url: str, agent: str, label: str) -> Subject:
    """Threads of a bench agent, started with ``Runtime.launch`` and advanced by ``outerloop worker``."""
    runtime = Runtime.from_settings(Settings(redis_url=url, agents=AGENTS, anthropic_api_key=None))
    return Subject(
        label=label,
        queue=QUEUE,
        submit=lambda: runtime.launch(agent, "benchmark"),
        worker_args=OUTERLOOP_WORKER,
        result="done",
        worker_env=_outerloop_env(url),
    )


def _outerloop_env(url: str) -> dict[str, str]:
    # No API key: the scripted model answers, whatever the caller's environment holds.
    return {"REDIS_URL": url, "OUTERLOOP_AGENTS": AGENTS, "ANTHROPIC_API_KEY": ""}
