"""``outerloop worker``: a supervised pool of worker processes that do not fork per job.

RQ's default worker forks a work horse for every job (about 16 ms each, twice per
thread). Here a supervisor forks N children once; each child runs RQ's ``SimpleWorker``,
which runs jobs in its own main thread, so job time-outs still work (RQ's
``UnixSignalDeathPenalty`` raises in that thread). The supervisor forks after
``bot.work.worker.prepare``, so every child starts with the models and templates warm.

The supervisor:

- vouches for each child (``bot.state.liveness``): ``alive:{child's worker name}`` = its pid,
  every beat, for as long as the process exists, stopped (SIGSTOP) or not; a child that
  died is reaped within a tick, its vouch deleted at once, so the job it ran looks gone
  promptly, and a new child takes its place (the thread is queued again for it);
- runs the sweeps (``bot.work.sweeps.sweep_once``) every sweep interval;
- on SIGTERM or SIGINT, asks each child to stop after its current job (SIGTERM) and
  exits once they all did, vouching for them until then.

A child takes the worker name the supervisor gives it (``liveness.name_this_process``), and
dies with the supervisor (on Linux, by ``PR_SET_PDEATHSIG``), so a child is never left
running a tool that nobody vouches for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import time
from dataclasses import dataclass
from types import FrameType

import redis
import structlog
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.utils import now

from bot import tracing
from bot.metrics.multiproc import process_gone
from bot.runtime import Runtime
from bot.state import liveness
from bot.state.store import key
from bot.work.sweeps import sweep_once

log = structlog.get_logger(__name__)

TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
TICK = 0.2
"""Seconds between two looks at the children: how late a dead child is noticed at most."""
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
RESTART_PAUSE = 1.0
"""Seconds before a dead child is replaced, so a child that cannot start does not spin."""
_PR_SET_PDEATHSIG = 1
BOOKKEEPING = 1.0
"""Seconds between two of a child's writes that only RQ's monitoring reads (``PoolWorker``)."""
ADVANCE = "bot.work.worker.advance_job"
"""The job that advances a thread (``bot.work.worker`` imports this module, so by name)."""


def worker_name(supervisor: int, child: int) -> str:
    """The RQ worker name (and liveness name) of child ``child`` of supervisor ``supervisor``."""
    return f"{socket.gethostname()}:{supervisor}.{child}".replace(liveness.SEPARATOR, "_")


@dataclass(frozen=True)
class Child:
    pid: int
    name: str


class Pool:
    """``Pool(rt, processes).run()``: run ``processes`` children until asked to stop."""

    def __init__(self, rt: Runtime, processes: int, burst: bool = False) -> None:
        self.rt = rt
        self.size = processes
        self.burst = burst
        """Children exit once the queues are empty, and are not replaced; the pool ends with them."""
        self.children: dict[int, Child] = {}
        self.stopping = False
        self.beat = max(1.0, rt.settings.lock_ttl / 3)
        self.last_vouch = 0.0
        self.last_sweep = 0.0
        self.waiting_since: float | None = None

    @property
    def liveness_ttl(self) -> float:
        """How long one vouch lasts: a few missed beats, so one slow beat is no death notice."""
        return 3 * self.beat + 5

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        for _ in range(self.size):
            self._spawn()
        log.info("pool.started", processes=self.size, children=sorted(self.children))
        while self.children or not (self.stopping or self.burst):
            self._reap()
            self._replace()
            self._vouch()
            self._maybe_sweep()
            time.sleep(TICK)
        log.info("pool.stopped")

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        """Let every child finish its job, then exit (a second signal changes nothing)."""
        if not self.stopping:
            log.info("pool.stopping", signal=signal.Signals(signum).name)
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _spawn(self) -> None:
        supervisor = os.getpid()
        # Held back until the child has its own handlers: a stop request must not run the
        # supervisor's handler in the child.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(self.rt, worker_name(supervisor, os.getpid()), supervisor, self.burst)
            except Exception:  # a child's last word, rather than a silent exit
                log.exception("pool.child_failed")
            finally:
                tracing.flush()  # os._exit runs no exit handlers: export the spans still buffered
                os._exit(code)
        child = Child(pid, worker_name(supervisor, pid))
        self.children[pid] = child
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if self.stopping:  # asked to stop while it was being born
            os.kill(pid, signal.SIGTERM)
        self._vouch_for(child)  # at once: its first job must not look gone before the next beat

    def _reap(self) -> None:
        for child in list(self.children.values()):
            done, status = os.waitpid(child.pid, os.WNOHANG)
            if done == 0:
                continue
            del self.children[child.pid]
            self._forget(child)
            process_gone(child.pid)
            if os.WIFSIGNALED(status):
                log.warning("pool.child_died", pid=child.pid, signal=signal.Signals(os.WTERMSIG(status)).name)
            elif not (self.stopping or self.burst) or os.WEXITSTATUS(status):
                log.warning("pool.child_exited", pid=child.pid, status=os.WEXITSTATUS(status))

    def _replace(self) -> None:
        """Start new children for the dead ones, after a pause (none in burst mode or when stopping)."""
        if self.stopping or self.burst or len(self.children) >= self.size:
            self.waiting_since = None
            return
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
        if time.monotonic() - self.waiting_since >= RESTART_PAUSE:
            while len(self.children) < self.size and not self.stopping:
                self._spawn()
            self.waiting_since = None

    def _forget(self, child: Child) -> None:
        """Stop vouching for a dead child at once, and wake the thread its job was advancing:
        that job will not finish, and its thread must not wait for the recovery sweep."""
        connection = self.rt.connection
        try:
            connection.delete(key("alive", child.name))
            worker = PoolWorker.find_by_key(PoolWorker.redis_worker_namespace_prefix + child.name, connection)
            job_id = worker.get_current_job_id() if worker is not None else None
            job = Job.fetch(job_id, connection=connection) if job_id is not None else None
            if job is not None and job.func_name == ADVANCE and job.args:
                self.rt.enqueue(str(job.args[0]))
                log.warning("pool.thread_requeued", thread_id=job.args[0], job_id=job_id)
        except (*TRANSIENT, NoSuchJobError) as exc:  # the vouch expires, the recovery sweep requeues
            log.warning("pool.forget_failed", child=child.name, error=type(exc).__name__)

    def _vouch(self) -> None:
        if time.monotonic() - self.last_vouch < self.beat:
            return
        self.last_vouch = time.monotonic()
        for child in self.children.values():
            self._vouch_for(child)

    def _vouch_for(self, child: Child) -> None:
        try:
            liveness.vouch(self.rt.connection, child.name, child.pid, self.liveness_ttl)
        except TRANSIENT as exc:
            log.warning("pool.vouch_failed", error=type(exc).__name__)

    def _maybe_sweep(self) -> None:
        """Recover stalled threads and owed deliveries without ``outerloop scheduler`` too."""
        if self.stopping or time.monotonic() - self.last_sweep < self.rt.settings.sweep_interval:
            return
        self.last_sweep = time.monotonic()
        sweep_once(self.rt, time.time())


def _child(rt: Runtime, name: str, supervisor: int, burst: bool) -> int:
    """Run one child: an RQ ``SimpleWorker`` named ``name`` on the Outerloop queues."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _die_with(supervisor)
    liveness.name_this_process(name)
    worker = PoolWorker([rt.queue, rt.outbound_queue], name=name, connection=rt.connection, worker_ttl=20)
    try:
        worker.work(burst=burst, with_scheduler=True)
    except TRANSIENT as exc:  # Redis away before the loop started: the supervisor starts another
        log.warning("worker.redis_unavailable", error=type(exc).__name__)
        return 1
    return 0


def _die_with(supervisor: int) -> None:
    """Have the kernel kill this child when the supervisor dies (Linux), so that a child never
    runs a tool unvouched for."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # the supervisor died before the line above
        os._exit(1)


class PoolWorker(SimpleWorker):
    """RQ's non-forking worker as a pool child: it stops after its job on SIGTERM only, and
    spares Redis the bookkeeping writes that only monitoring reads.

    Ctrl-C in a terminal sends SIGINT to the whole process group; the supervisor turns it
    into one SIGTERM per child, so a child ignores SIGINT rather than take a second
    signal as a request for a cold shutdown.

    Per job, RQ's loop writes the worker's heartbeat (three commands, one round trip each)
    before and after it dequeues and again after the job, its state twice, the job's
    heartbeat once more as the job ends, and checks for ``rq suspend``: about a dozen round
    trips, each an fsync with a durable Redis, against about eight for advancing a thread.
    Here the worker's heartbeat is written at most once a ``BOOKKEEPING`` interval (in one
    round trip; the worker's key lives ``worker_ttl`` + 60 s), its state only when it
    changes, and the suspension looked up at most once an interval; the job's own records
    (started, finished, failed, retried) are RQ's, untouched."""

    _beat_at = 0.0
    _suspension_at = 0.0

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self.request_stop)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:  # part of a write RQ makes anyway: free
            super().heartbeat(timeout, pipeline)
            return
        if timeout is None and time.monotonic() - self._beat_at < BOOKKEEPING:
            return
        self._beat_at = time.monotonic()
        with self.connection.pipeline(transaction=False) as beat:
            super().heartbeat(timeout, beat)
            beat.execute()

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline)

    def check_for_suspension(self, burst: bool) -> None:
        if time.monotonic() - self._suspension_at < BOOKKEEPING:
            return
        self._suspension_at = time.monotonic()
        super().check_for_suspension(burst)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        # RQ also writes the job's heartbeat here, just before it records the job finished
        # or failed in the next write: the end time is what that record needs.
        job.ended_at = now()
