"""Redis killed with SIGKILL and restarted from its AOF while an approved deploy runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.faults import restart_redis
from tests.faults.rig import Rig
from tests.faults.scenario import deploying
from tests.services import RedisServer

DOWN = 3.0
"""Seconds Redis stays down: longer than the lock TTL, so the lock expires meanwhile."""


@pytest.fixture
def deploy_seconds() -> float:
    """Long enough to outlive the outage and the workers' reconnecting (they back off)."""
    return 12.0


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(env: dict[str, str], private_redis: RedisServer) -> dict[str, str]:
    return {**env, "REDIS_URL": private_redis.url}


def test_a_redis_restart_during_a_deploy_runs_it_once_and_the_thread_finishes(
    system: Rig, private_redis: RedisServer
) -> None:
    system.workers.start(2)
    system.start_scheduler()
    approver, _ = deploying(system)

    restart_redis(private_redis, DOWN)

    approver.settle(timeout=60)
    system.outcome(approver, expected=1).verify()
