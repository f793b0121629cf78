"""The work horse running an approved deploy frozen (SIGSTOP) past the lock TTL, then thawed."""

from __future__ import annotations

from tests.faults.faults import freeze_horses
from tests.faults.rig import Rig
from tests.faults.scenario import deploying

FROZEN = 6.0
"""Seconds the horse stays stopped: three lock TTLs."""


def test_a_horse_stopped_past_the_lock_ttl_runs_its_deploy_once_and_the_thread_finishes(
    system: Rig,
) -> None:
    system.workers.start(2)
    system.start_scheduler()
    approver, executions = deploying(system)

    freeze_horses(executions.starts, FROZEN)

    approver.settle(timeout=60)
    system.outcome(approver, expected=1).verify()
