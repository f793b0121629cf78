"""The start every fault scenario shares: threads launched, approved, and their deploys running."""

from __future__ import annotations

from tests.faults.approver import Approver
from tests.faults.effects import Executions, started
from tests.faults.rig import Rig
from tests.services import wait_for


def deploying(system: Rig, count: int = 1, timeout: float = 60.0) -> tuple[Approver, Executions]:
    """Launch ``count`` deploy threads, approve them, and return once ``count`` deploys started."""
    approver = Approver(system.api)
    approver.watch(system.launch(count))

    def all_started() -> Executions | None:
        approver.sweep()
        return started(system.deploys, count)

    return approver, wait_for(all_started, f"{count} approved deploys to start", timeout)
