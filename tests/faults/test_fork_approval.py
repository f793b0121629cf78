"""A fork keeps the events but not the authority: an approval does not travel into it."""

from __future__ import annotations

import pytest

from tests.faults.approver import JSON, TOKEN, Approver, in_status
from tests.faults.rig import Rig
from tests.services import wait_for


@pytest.fixture
def deploy_seconds() -> float:
    return 0.0


def test_a_fork_after_an_approval_asks_for_a_new_one_before_it_deploys(system: Rig) -> None:
    system.workers.start(2)
    system.start_scheduler()
    approver = Approver(system.api, limit=1)
    [source] = system.launch()
    approver.watch([source])
    assert approver.settle(timeout=30)
    events = system.thread(source)["events"]
    assert events[-1]["type"] == "done" and len(system.executions().starts) == 1
    approval = next(i for i, e in enumerate(events) if e["type"] == "human_response")

    forked = system.api.post(f"/threads/{source}/fork", headers=TOKEN, json={"at": approval + 1})
    assert forked.status_code == 201, forked.text
    fork = forked.json()["id"]

    def settled() -> JSON | None:
        body = system.thread(fork)
        return body if body["status"] != "running" else None

    body = wait_for(settled, "the fork to stop running")
    assert len(system.executions().starts) == 1, "the fork deployed on the source's approval"
    assert body["status"] == "awaiting_human" and body["pending"]["kind"] == "approval"

    approver.watch([fork])
    assert approver.settle(timeout=30)
    assert in_status(system.api, fork, "done")
    assert len(system.executions().starts) == 2, "approving the fork deploys once more"
