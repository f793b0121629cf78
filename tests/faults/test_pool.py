"""The worker pool's supervisor: it replaces a killed child at once, stops vouching for it,
and on SIGTERM lets the running job finish before it exits."""

from __future__ import annotations

import os
import signal

from bot.state.store import key
from bot.work.pool import worker_name
from tests.faults.faults import kill_child_running
from tests.faults.rig import Rig
from tests.faults.scenario import deploying
from tests.services import children_of, wait_for


def test_a_killed_child_is_replaced_and_its_deploy_goes_to_a_human_once(system: Rig) -> None:
    system.workers.start(1)  # one supervisor, two children; no scheduler: the supervisor wakes the thread
    [supervisor] = [p for p in system.workers.processes if p not in system.workers.callers]
    approver, executions = deploying(system)
    [thread_id] = approver.accepted
    victim = executions.starts[0].horse
    assert victim in children_of(supervisor.pid), "the deploy runs in a child of the supervisor"

    kill_child_running(executions.starts[0])

    wait_for(lambda: victim not in children_of(supervisor.pid), "the supervisor to reap the child")
    assert not system.runtime.connection.exists(key("alive", worker_name(supervisor.pid, victim)))
    wait_for(lambda: len(children_of(supervisor.pid)) == 2, "a new child in its place")
    log = system.workers.log
    assert log is not None
    requeued = [line for line in log.read_text().splitlines() if "pool.thread_requeued" in line]
    assert len(requeued) == 1 and thread_id in requeued[0], "the supervisor woke the thread at once"
    approver.settle(timeout=45)
    system.outcome(approver, expected=2, holder_survives=False).verify()
    events = system.thread(thread_id)["events"]
    interrupted = [e for e in events if e["type"] == "error" and e["source"] == "interrupted"]
    assert len(interrupted) == 1, "the killed run is reported interrupted, once"
    assert len(system.executions().starts) == 2, "approving again re-ran the deploy once"


def test_sigterm_lets_the_running_deploy_finish_then_the_pool_exits_cleanly(system: Rig) -> None:
    system.workers.start(1)
    [supervisor] = [p for p in system.workers.processes if p not in system.workers.callers]
    approver, executions = deploying(system)

    os.kill(supervisor.pid, signal.SIGTERM)

    assert supervisor.wait(timeout=30) == 0
    assert executions.starts[0].pid in system.executions().ended, "the deploy ran to its end"
    # What is left (acting on the model's answer after the deploy) waits for the next pool.
    system.workers.start(1)
    approver.settle(timeout=30)
    system.outcome(approver, expected=1).verify()
    output = system.workers.log.read_text() if system.workers.log else ""
    assert "Traceback" not in output, output
    assert "pool.stopped" in output
