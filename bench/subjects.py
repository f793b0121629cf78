"""What is compared: a no-op RQ job on plain ``rq worker`` processes and on ``outerloop worker``
processes, Outerloop threads of one and of two steps, and threads of one step on RQ's forking
worker, as ``outerloop worker`` ran them before its pool (a fork per job)."""

from __future__ import annotations

from typing import Any

import redis
from rq import Queue, Worker
from rq.worker import BaseWorker

from agent.asking import decision, request_for
from agent.events import Origin, Trigger, new_id
from agent.model import ModelCall
from bench.jobs import noop
from bench.measure import Subject
from bot.runtime import QUEUE, Runtime
from bot.settings import Settings
from bot.work.worker import prepare, runtime
from tests.services import OUTERLOOP_WORKER

ONE_PROCESS = (*OUTERLOOP_WORKER, "--processes", "1")
"""``outerloop worker`` with one worker process, so that "1 worker" means one process running jobs."""

RAW_QUEUE = "bench"
BENCH = Origin(channel="api", sender="bench")
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
        worker_args=ONE_PROCESS,
        result=None,
        worker_env=worker_env(url),
    )


def thread_on_outerloop_worker(url: str, agent: str, label: str) -> Subject:
    """Advance jobs of a bench agent's threads on ``outerloop worker``, one job a thread, each
    ending with a model request that a caller would answer (none runs here): a ``one_step``
    thread is queued before its first step (the job asks the model, as after a launch of an
    agent with prefetch hooks); a ``two_steps`` thread once the model chose ``do_nothing``
    (the job runs it and asks again, as every tool step does)."""
    runtime = Runtime.from_settings(Settings(redis_url=url, agents=AGENTS, anthropic_api_key=None))
    return Subject(
        label=label,
        queue=QUEUE,
        submit=lambda: _queued(runtime, agent),
        worker_args=ONE_PROCESS,
        result="running",
        worker_env=worker_env(url),
    )


def _queued(runtime: Runtime, agent: str) -> None:
    thread = runtime.store.create(new_id(), agent, Trigger(text="benchmark", origin=BENCH)).thread
    if agent == "two_steps":
        requested = request_for(thread, runtime.agents.get(agent))
        thread = runtime.store.append(thread, requested).thread
        runtime.store.append(thread, decision(requested, ModelCall("do_nothing", {}), 0.0))
    runtime.enqueue(thread.id)


def worker_env(url: str) -> dict[str, str]:
    # No API key: the scripted model answers, whatever the caller's environment holds.
    return {"REDIS_URL": url, "OUTERLOOP_AGENTS": AGENTS, "ANTHROPIC_API_KEY": ""}


class ForkPerJobWorker(Worker):
    """RQ's forking worker, warmed as ``outerloop worker`` warmed it before it forked horses."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prepare(runtime())


def thread_on_forking_worker(url: str, agent: str, label: str) -> Subject:
    """Threads of a bench agent advanced by ``rq worker`` with a fork per job: the baseline."""
    subject = thread_on_outerloop_worker(url, agent, label)
    worker_class = f"{ForkPerJobWorker.__module__}.{ForkPerJobWorker.__qualname__}"
    return Subject(
        label=label,
        queue=subject.queue,
        submit=subject.submit,
        worker_args=(
            *("-m", "rq.cli", "worker", "--url", url, "--with-scheduler", "--worker-class", worker_class),
            QUEUE,
        ),
        result=subject.result,
        worker_env=subject.worker_env,
    )
