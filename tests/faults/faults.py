"""The faults, each as one call: Redis killed and restarted, a worker process frozen, a worker
killed whole or one of its processes alone.

(A network partition is ``tests.faults.proxy.Proxy.down``.) Each returns once the fault is
over, so what a test measures after it is recovery.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence

from tests.faults.effects import Start, signal_horse
from tests.services import RedisServer, Workers


def restart_redis(server: RedisServer, down: float) -> None:
    """SIGKILL redis-server, leave it down for ``down`` seconds, start it again from its AOF."""
    server.kill()
    time.sleep(down)
    server.start()


def freeze_horses(starts: Sequence[Start], seconds: float) -> None:
    """SIGSTOP the work horses running ``starts`` for ``seconds``, then SIGCONT them."""
    for start in starts:
        signal_horse(start, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        for start in starts:
            signal_horse(start, signal.SIGCONT)


def kill_worker_running(workers: Workers, start: Start) -> None:
    """SIGKILL the ``outerloop worker`` whose child runs ``start``: supervisor, children and deploy."""
    owner = workers.owner_of(start.horse)
    assert owner is not None, f"no worker of the pool runs process {start.horse}"
    workers.kill(owner)


def kill_child_running(start: Start) -> None:
    """SIGKILL the one worker process running ``start`` and its deploy; its supervisor lives on."""
    signal_horse(start, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(start.pid, signal.SIGKILL)
