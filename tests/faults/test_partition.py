"""A network partition between the worker running an approved deploy and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from rq import Worker

from tests.faults.proxy import Proxy
from tests.faults.rig import Rig
from tests.faults.scenario import deploying
from tests.services import Workers, wait_for

CUT = 5.0
"""Seconds no byte passes between the worker and Redis: two and a half lock TTLs."""


@pytest.fixture
def proxy(env: dict[str, str]) -> Iterator[Proxy]:
    redis = urlsplit(env["REDIS_URL"])
    assert redis.port is not None
    proxy = Proxy(upstream=redis.port)
    yield proxy
    proxy.close()


@pytest.fixture
def cut_off(env: dict[str, str], proxy: Proxy, tmp_path: Path) -> Iterator[Workers]:
    """A worker that reaches Redis through the proxy."""
    url = urlsplit(env["REDIS_URL"])
    pool = Workers({**env, "REDIS_URL": f"redis://127.0.0.1:{proxy.port}{url.path}"}, tmp_path / "cut.log")
    yield pool
    pool.stop_all()
    print((tmp_path / "cut.log").read_text() if (tmp_path / "cut.log").exists() else "")


@pytest.mark.parametrize("reset", [False, True], ids=["blackhole", "blackhole then reset"])
def test_a_partitioned_worker_runs_its_deploy_once_and_the_thread_finishes(
    system: Rig, cut_off: Workers, proxy: Proxy, reset: bool
) -> None:
    cut_off.start(1)
    system.start_scheduler()
    approver, _ = deploying(system)  # on the only worker there is: the one behind the proxy
    system.workers.start(1)
    wait_for(lambda: len(Worker.all(connection=system.runtime.connection)) == 2, "the second worker")

    with proxy.down(CUT, reset=reset):
        pass

    approver.settle(timeout=60)
    system.outcome(approver, expected=1).verify()
