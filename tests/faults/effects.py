"""A deploy that counts its real executions in a file, and reading the count back.

The bundled deploy agent runs ``OUTERLOOP_DEPLOY_COMMAND``; ``counting_deploy`` makes it a
shell that writes ``start <its pid> <its parent's pid>`` when it begins, sleeps, and writes
``end <its pid>`` when it finishes. Its parent is the worker process running the job (a
child of an ``outerloop worker`` pool, its *horse* here), so a test can stop or kill exactly it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


def counting_deploy(log: Path, seconds: float) -> str:
    """The deploy command: one ``start`` line, ``seconds`` of work, one ``end`` line."""
    return f"sh -c 'echo start $$ $PPID >> {log}; sleep {seconds:g}; echo end $$ >> {log}'"


@dataclass(frozen=True)
class Start:
    pid: int
    """The deploy shell's own pid."""
    horse: int
    """The worker process that ran it (a pool's child)."""


@dataclass(frozen=True)
class Executions:
    """What the deploy log says ran: every start, and the pids of the runs that finished."""

    starts: tuple[Start, ...]
    ended: frozenset[int]

    @classmethod
    def read(cls, log: Path) -> Executions:
        lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
        starts = tuple(Start(int(words[1]), int(words[2])) for words in lines if words[0] == "start")
        ended = frozenset(int(words[1]) for words in lines if words[0] == "end")
        return cls(starts, ended)

    @property
    def ends(self) -> int:
        return len(self.ended)

    @property
    def running(self) -> list[Start]:
        """Runs that started and have not finished (or were killed before they could)."""
        return [start for start in self.starts if start.pid not in self.ended]


def started(log: Path, count: int = 1) -> Executions | None:
    """The executions once at least ``count`` have started (for ``wait_for``)."""
    executions = Executions.read(log)
    return executions if len(executions.starts) >= count else None


def signal_horse(start: Start, signum: signal.Signals) -> None:
    """Send ``signum`` to the worker process running ``start`` (SIGSTOP freezes it, SIGCONT thaws it)."""
    os.kill(start.horse, signum)
