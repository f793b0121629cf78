"""Who holds a thread, and whether that holder is known to be gone (honest recovery, invariant 5).

A thread's lock and each ``tool_call`` name their *holder*: the worker, the process that
ran the job, and a random token for that one job. A lock's TTL running out says only that
renewals stopped arriving, not that the holder died: a process stopped by SIGSTOP, or cut
off from Redis for a while, is still running its tool. So a call counts as interrupted
only when its holder is known to be gone:

- the supervisor of a worker pool vouches for each of its children (``bot.work.pool``): every
  beat it writes ``alive:{child's worker name}`` = the child's pid, with a short TTL. It
  watches the children, so a child that is stopped or busy is still vouched for, and one
  that died is not (the supervisor reaps it and deletes its vouch at once). Each child
  takes the worker name its supervisor gave it (``name_this_process``): in memory, not in
  the environment, so that a tool's subprocess, or a process the child forks, is not
  taken for the child;
- a holder is gone when ``alive:{worker}`` names another process or is missing (its
  supervisor stopped vouching for longer than the TTL: dead, or frozen as a whole, which
  nobody outside can tell from dead);
- a worker is one process at a time, so a holder in another process of the asking worker
  itself is gone.

A process that no supervisor named (a test, a tool advancing a thread in-process, a plain
``rq worker``) is a worker of its own, and vouches for itself while it holds a lock
(``ThreadLock``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import redis

from agent.events import new_id
from bot.state.store import key

SEPARATOR = "|"
_NAMES: dict[int, str] = {}
"""The worker name a pool's supervisor gave this process, by the pid it was given to (a
process this one forks inherits the entry, under a pid that is not its own)."""


def name_this_process(worker: str) -> None:
    """Take ``worker`` as this process's worker name (a pool's child, named by its supervisor)."""
    _NAMES[os.getpid()] = worker.replace(SEPARATOR, "_")


@dataclass(frozen=True)
class Holder:
    worker: str
    pid: int
    token: str

    @classmethod
    def here(cls) -> Holder:
        """The holder for a job run by this process: a pool's child is named by its supervisor;
        any other process (a fork of a child too) is a worker of its own."""
        worker = _NAMES.get(os.getpid()) or _own_worker_name()
        return cls(worker, os.getpid(), new_id()[:12])

    @classmethod
    def parse(cls, value: str) -> Holder | None:
        worker, _, rest = value.partition(SEPARATOR)
        pid, _, token = rest.partition(SEPARATOR)
        return cls(worker, int(pid), token) if pid.isdigit() and token else None

    @property
    def vouches_for_itself(self) -> bool:
        """Not a pool's child: nobody else will vouch for this process."""
        return self.worker == _own_worker_name()

    def __str__(self) -> str:
        return SEPARATOR.join((self.worker, str(self.pid), self.token))


def _own_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}".replace(SEPARATOR, "_")


def vouch(connection: redis.Redis, worker: str, pid: int, ttl: float) -> None:
    """Say that ``worker``'s current job runs in process ``pid`` (its own pid when idle)."""
    connection.set(key("alive", worker), pid, px=int(ttl * 1000))


def is_gone(connection: redis.Redis, value: str, asking: Holder) -> bool:
    """Whether the holder named ``value`` is known to be gone (see the module docstring)."""
    holder = Holder.parse(value)
    if holder is None:
        return True  # not a holder this version writes: a lock from before an upgrade
    if holder.worker == asking.worker and holder.pid != asking.pid:
        return True
    vouched = connection.get(key("alive", holder.worker))
    return vouched is None or int(vouched) != holder.pid
