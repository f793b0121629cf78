"""A worker killed (whole process group, horse and deploy) mid-deploy, with no scheduler running."""

from __future__ import annotations

from tests.faults.faults import kill_worker_running
from tests.faults.rig import Rig
from tests.faults.scenario import deploying


def test_a_killed_workers_thread_is_recovered_by_the_other_worker_and_asks_a_human(system: Rig) -> None:
    system.workers.start(2)
    approver, executions = deploying(system)
    [thread_id] = approver.accepted

    kill_worker_running(system.workers, executions.starts[0])

    approver.settle(timeout=45)
    outcome = system.outcome(approver, expected=2, holder_survives=False)
    outcome.verify()
    events = system.thread(thread_id)["events"]
    interrupted = [i for i, e in enumerate(events) if e["type"] == "error" and e["source"] == "interrupted"]
    assert len(interrupted) == 1, "the killed run is reported interrupted, once"
    asked = events[interrupted[0] + 1]
    assert asked["type"] == "human_request" and asked["kind"] == "approval", "a human decides"
    assert "interrupted" in asked["text"]
    runs = system.executions()
    assert len(runs.starts) == 2 and runs.starts[1].pid in runs.ended, "approving re-ran the deploy once"
