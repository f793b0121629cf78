"""Timing one kind of job on real worker processes against a private Redis.

A run submits N jobs while no worker is running, starts W worker processes and waits
until all N have finished. Throughput comes from RQ's own timestamps: the jobs'
``ended_at`` over the middle of the run, so that neither the workers' start-up nor the
last stragglers count. With one worker the run then times round trips, one job at a
time, from just before it is submitted until its result is stored; a keyspace
notification says when, so no polling loop shares the CPUs with the workers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import redis
from redis.client import PubSub
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry

from tests.services import Workers, wait_for

TRIM = 0.1
"""Share of completions left out at each end of a run when computing throughput."""
SETTLE = 0.02
"""Seconds to wait before each round trip, so that it starts with the worker idle."""
RESULT_TIMEOUT = 10.0
"""Seconds a single job may take before the benchmark gives up on it."""
START_TIMEOUT = 30.0
"""Seconds the worker processes may take to start."""
JOB_BUDGET = 0.1
"""Seconds a job may take on average in a run before the benchmark gives up on the run."""
RESULTS_CHANNEL = "__keyspace@{db}__:rq:results:*"
"""Where Redis announces that RQ stored a job's result (needs notify-keyspace-events Kt)."""


class BenchmarkFailed(RuntimeError):
    """A job failed or returned something else: the run did not measure what it claims."""


@dataclass(frozen=True)
class Subject:
    """One kind of job: how the client submits it and which processes run it."""

    label: str
    queue: str
    submit: Callable[[], object]
    worker_args: tuple[str, ...]
    result: object
    """What every job must return; checked after the run."""
    worker_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    submit: float
    """Seconds the client spends submitting one job."""
    rate: float
    """Jobs finished per second while every worker was busy."""
    round_trips: tuple[float, ...] = ()
    """Seconds from submitting one job to its stored result, with the worker idle."""

    @property
    def round_trip(self) -> float:
        return statistics.median(self.round_trips)

    @classmethod
    def median(cls, runs: Sequence[Run]) -> Run:
        """The median of repeated runs, so that a burst of other load on the machine counts less."""
        return cls(
            submit=statistics.median(run.submit for run in runs),
            rate=statistics.median(run.rate for run in runs),
            round_trips=tuple(trip for run in runs for trip in run.round_trips),
        )


def measure(subject: Subject, connection: redis.Redis, jobs: int, workers: int, round_trips: int = 0) -> Run:
    """Run ``jobs`` jobs of ``subject`` on ``workers`` worker processes, then ``round_trips`` one by one."""
    connection.flushdb()
    started = time.perf_counter()
    for _ in range(jobs):
        subject.submit()
    submit = (time.perf_counter() - started) / jobs
    pool = Workers(subject.worker_env, args=subject.worker_args)
    pool.start(workers)
    try:
        ends = _drain(subject, connection, jobs, pool)
        trips = _round_trips(subject, connection, round_trips)
    finally:
        pool.stop_all()
    return Run(submit=submit, rate=steady_rate(ends), round_trips=trips)


def steady_rate(ends: Sequence[datetime]) -> float:
    """Completions per second between the first and last ``TRIM`` of ``ends``."""
    ordered = sorted(ends)
    first = int(len(ordered) * TRIM)
    last = len(ordered) - 1 - first
    return (last - first) / (ordered[last] - ordered[first]).total_seconds()


def _drain(subject: Subject, connection: redis.Redis, jobs: int, pool: Workers) -> list[datetime]:
    """Wait until ``jobs`` jobs have finished; check their results; return when each ended."""
    finished = FinishedJobRegistry(subject.queue, connection=connection)

    def all_finished() -> bool:
        _raise_on_failure(subject, connection, pool)
        return finished.count >= jobs

    wait_for(all_finished, f"{jobs} jobs of {subject.label}", timeout=START_TIMEOUT + jobs * JOB_BUDGET)
    done = [job for job in Job.fetch_many(finished.get_job_ids(), connection=connection) if job is not None]
    if len(done) != jobs or Queue(subject.queue, connection=connection).count:
        raise BenchmarkFailed(f"{subject.label}: {len(done)} jobs ran for {jobs} submitted")
    wrong = [job.return_value() for job in done if job.return_value() != subject.result]
    if wrong:
        raise BenchmarkFailed(
            f"{subject.label}: {len(wrong)} jobs returned {wrong[0]!r}, not {subject.result!r}"
        )
    return [job.ended_at for job in done if job.ended_at is not None]


def _raise_on_failure(subject: Subject, connection: redis.Redis, pool: Workers) -> None:
    # The workers' output is discarded, so say here what went wrong, as far as Redis knows.
    for process in pool.processes:
        if process.poll() is not None:
            command = " ".join(subject.worker_args)
            raise BenchmarkFailed(f"worker `python {command}` exited with status {process.returncode}")
    queue = subject.queue
    failed = FailedJobRegistry(queue, connection=connection)
    for job_id in failed.get_job_ids(0, 0):
        job = Job.fetch(job_id, connection=connection)
        result = job.latest_result()
        raise BenchmarkFailed(f"job {job.description} failed: {result.exc_string if result else 'no result'}")
    # Outerloop's jobs are retried with a delay instead of failing at once.
    if ScheduledJobRegistry(queue, connection=connection).count:
        raise BenchmarkFailed(f"a job on queue {queue} failed and RQ scheduled it to be retried")


def _round_trips(subject: Subject, connection: redis.Redis, count: int) -> tuple[float, ...]:
    if not count:
        return ()
    pubsub = connection.pubsub()
    pubsub.psubscribe(RESULTS_CHANNEL.format(db=connection.connection_pool.connection_kwargs.get("db", 0)))
    try:
        _await(pubsub, "psubscribe")
        times = []
        for _ in range(count):
            time.sleep(SETTLE)
            started = time.perf_counter()
            subject.submit()
            _await(pubsub, "pmessage")
            times.append(time.perf_counter() - started)
        return tuple(times)
    finally:
        pubsub.close()


def _await(pubsub: PubSub, kind: str) -> None:
    deadline = time.monotonic() + RESULT_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        message = pubsub.get_message(timeout=left)
        if message is not None and message["type"] == kind:
            return
    raise BenchmarkFailed(f"no {kind} message within {RESULT_TIMEOUT} s")
