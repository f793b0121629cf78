"""Fixtures for the fault suite: the rig of ``tests.faults.rig`` over the suite's environment,
with a deploy that counts its runs and outlives the lock TTL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_slack import FakeSlack
from tests.faults.effects import counting_deploy
from tests.faults.rig import TRUSTED_APPROVER, Rig, rig, slack_env

DEPLOY_SECONDS = 6.0
"""How long a deploy runs: three lock TTLs (``OUTERLOOP_LOCK_TTL=2``), so a fault outlives the lock."""


@pytest.fixture
def deploy_seconds() -> float:
    """Overridden by tests that need quick deploys."""
    return DEPLOY_SECONDS


@pytest.fixture
def env(
    env: dict[str, str], fake_slack: FakeSlack, deploy_log: Path, deploy_seconds: float
) -> dict[str, str]:
    return {
        **env,
        **slack_env(fake_slack),
        **TRUSTED_APPROVER,
        "OUTERLOOP_DEPLOY_COMMAND": counting_deploy(deploy_log, deploy_seconds),
    }


@pytest.fixture
def system(env: dict[str, str], fake_slack: FakeSlack, deploy_log: Path, tmp_path: Path) -> Iterator[Rig]:
    output = tmp_path / "processes.log"
    with rig(env, fake_slack, deploy_log, output) as built:
        yield built
    # Shown by pytest only when the test failed: what the processes said.
    print(output.read_text() if output.exists() else "(no process output)")
