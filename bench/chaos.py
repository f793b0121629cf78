"""``python -m bench chaos``: the fault suite's faults at scale, counted as a table.

For each fault it starts a private, durable Redis, worker processes, ``outerloop scheduler``,
the web app and a fake Slack (``tests.faults.rig``), launches N deploy threads as Slack
conversations and approves every approval request through the HTTP API, as an operator who
trusts what they are told (``tests.faults.approver``). While deploys run (each outlives the
lock TTL) it injects the fault several times, then waits for every thread to settle and
counts, from outside, what broke (``tests.faults.verdict``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

from tests.fake_slack import FakeSlack
from tests.faults.approver import Approver
from tests.faults.effects import Start, counting_deploy
from tests.faults.faults import freeze_horses, kill_worker_running, restart_redis
from tests.faults.proxy import Proxy
from tests.faults.rig import TRUSTED_APPROVER, Rig, rig, slack_env
from tests.faults.verdict import Outcome
from tests.services import RedisServer, Workers, outerloop_env, tagged_repo, wait_for

DEPLOY_SECONDS = 3.0
"""How long each deploy runs: longer than the lock TTL (2 s)."""
REDIS_DOWN = 3.0
FROZEN = 6.0
CUT = 5.0


@dataclass
class Cluster:
    """One fault's system: the rig, its Redis, and the workers cut off behind a proxy (if any)."""

    system: Rig
    redis: RedisServer
    proxy: Proxy
    cut_off: Workers


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Cluster, list[Start]], int]
    """Hit the running deploys; returns how many of them it killed (their re-runs are honest)."""
    holder_survives: bool = True


def _restart_redis(cluster: Cluster, running: list[Start]) -> int:
    restart_redis(cluster.redis, REDIS_DOWN)
    return 0


def _freeze(cluster: Cluster, running: list[Start]) -> int:
    freeze_horses(running, FROZEN)
    return 0


def _partition(cluster: Cluster, running: list[Start]) -> int:
    with cluster.proxy.down(CUT):
        return 0


def _kill(cluster: Cluster, running: list[Start]) -> int:
    workers = cluster.system.workers
    victim = next((start for start in running if workers.owner_of(start.horse)), None)
    if victim is None:  # every running deploy is on the proxied pool: nothing of ours to kill
        return 0
    # Every deploy of that ``outerloop worker`` dies with it: a pool runs several at once.
    owner = workers.owner_of(victim.horse)
    hit = [start for start in cluster.system.executions().running if workers.owner_of(start.horse) == owner]
    kill_worker_running(workers, victim)
    workers.start(1)  # a replacement, as a supervisor would start
    return max(1, len(hit))


FAULTS = (
    Fault("redis killed and restarted", _restart_redis),
    Fault("work horses stopped", _freeze),
    Fault("worker cut off from redis", _partition),
    Fault("worker killed", _kill, holder_survives=False),
)


@dataclass(frozen=True)
class Row:
    fault: str
    outcome: Outcome
    recovery: float | None
    """Seconds from the end of the last fault until every thread settled; None if some never did."""


def run_fault(fault: Fault, threads: int, workers: int, rounds: int, timeout: float) -> Row:
    with _cluster(workers) as cluster:
        system = cluster.system
        approver = Approver(system.api)
        approver.watch(system.launch(threads))
        killed = 0
        for _ in range(rounds):
            try:
                running = wait_for(lambda: _running(system, approver), "a deploy to run", timeout=60)
            except AssertionError:  # threads wait, but none deploys: stuck, as the table will say
                break
            if running is _ALL_SETTLED:
                break
            killed += fault.inject(cluster, running)
        ended = time.monotonic()
        settled = approver.settle(timeout)
        recovery = time.monotonic() - ended if settled else None
        outcome = system.outcome(approver, expected=threads + killed, holder_survives=fault.holder_survives)
    return Row(fault.name, outcome, recovery)


_ALL_SETTLED: list[Start] = [Start(0, 0)]
"""What ``_running`` answers when no deploy is left to hit."""


def _running(system: Rig, approver: Approver) -> list[Start] | None:
    """The deploys running now, once some are; ``_ALL_SETTLED`` when every thread has settled."""
    if approver.sweep():
        return _ALL_SETTLED
    return system.executions().running or None


@contextmanager
def _cluster(workers: int) -> Iterator[Cluster]:
    with TemporaryDirectory(prefix="outerloop-chaos-") as name, FakeSlack() as slack:
        directory = Path(name)
        (directory / "redis").mkdir()
        redis = RedisServer(directory / "redis")
        redis.start()
        deploys = directory / "deploys.log"
        env = {
            **outerloop_env(
                redis.url, tagged_repo(directory / "repo"), counting_deploy(deploys, DEPLOY_SECONDS)
            ),
            **slack_env(slack),
            **TRUSTED_APPROVER,
        }
        proxy = Proxy(redis.port)
        cut_off = Workers({**env, "REDIS_URL": proxy.url()})
        try:
            with rig(env, slack, deploys, output=None) as system:
                cut_off.start(workers // 2)
                system.workers.start(workers - workers // 2)
                system.start_scheduler()
                yield Cluster(system, redis, proxy, cut_off)
        finally:
            with contextlib.suppress(Exception):
                cut_off.stop_all()
            proxy.close()
            redis.stop()


COLUMNS = (
    ("fault", 28),
    ("threads", 8),
    ("tool executions", 16),
    ("duplicate executions", 21),
    ("lost events", 12),
    ("undelivered requests", 21),
    ("stuck threads", 14),
    ("false interrupted", 18),
    ("time to recover", 16),
)


def table(rows: list[Row]) -> str:
    lines = [_line(title for title, _ in COLUMNS)]
    for row in rows:
        o = row.outcome
        recovery = f"{row.recovery:.1f} s" if row.recovery is not None else "never"
        cells = (o.threads, o.executions, o.duplicates, o.lost, o.undelivered, o.stuck, o.false_interrupted)
        lines.append(_line((row.fault, *(str(cell) for cell in cells), recovery)))
    return "\n".join(lines)


def _line(cells: Iterator[str] | tuple[str, ...]) -> str:
    (first, width), *rest = zip(cells, (width for _, width in COLUMNS), strict=True)
    return first.ljust(width) + "".join(cell.rjust(width) for cell, width in rest)


def broken(rows: list[Row]) -> bool:
    """Whether any fault broke a promise: duplicates, lost, undelivered, stuck or false interrupted."""
    return any(row.outcome.problems() for row in rows)
