"""Hundreds of threads queued for a worker while none runs, and ten scheduler sweeps past the lock TTL."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

from rq.job import Job

from agent.thread import Status
from bot.work.scheduler import Scheduler
from tests.answering import queued
from tests.faults.rig import Rig
from tests.services import wait_for

THREADS = int(os.environ.get("OUTERLOOP_STORM_THREADS", "250"))
"""Sized for CI on two cores (about 12 s), which runs within 15 minutes; set 1000 or more to storm harder."""
SWEEPS = 10


def queued_per_thread(system: Rig) -> Counter[str]:
    """How many advance jobs wait in the queue for each thread."""
    queue = system.runtime.queue
    jobs = Job.fetch_many(queue.get_job_ids(), connection=system.runtime.connection)
    return Counter(
        str(job.args[0]) for job in jobs if job is not None and job.func_name == "bot.work.worker.advance_job"
    )


def test_sweeps_queue_at_most_one_job_per_thread_and_the_workers_then_drain_them(system: Rig) -> None:
    rt = system.runtime
    threads = {queued(rt, "deploy", f"ship {number}") for number in range(THREADS)}
    scheduler = Scheduler(rt)
    start = datetime.now(UTC) + timedelta(seconds=rt.settings.lock_ttl + 1)
    for sweep in range(SWEEPS):
        scheduler.tick(start + timedelta(seconds=sweep * rt.settings.sweep_interval))

    jobs = queued_per_thread(system)
    assert set(jobs) == threads, "every thread keeps its job"
    repeated = {thread_id: count for thread_id, count in jobs.items() if count > 1}
    assert not repeated, (
        f"{sum(jobs.values())} jobs queued for {THREADS} threads; {len(repeated)} threads have more than one"
    )

    system.workers.start(2)
    # Two advance jobs a thread (the queued one asks the model, the next runs list_tags); the
    # caller asks for the approval itself.
    wait_for(
        lambda: len(rt.store.ids(Status.AWAITING_HUMAN)) == THREADS,
        f"all {THREADS} threads to ask for approval",
        timeout=300,
    )
