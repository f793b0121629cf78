"""The benchmark's table, its ratio against the target, and where the difference comes from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from bench.measure import Run

TARGET = 1.5
"""The most an Outerloop step may cost, as a multiple of a raw RQ no-op job (the issue's target)."""
STEP = (
    "the asking job locks a new thread, loads it, appends model_requested, posts it to the callers and\n"
    "unlocks (no caller runs here); the tool job first runs the no-op tool the model chose (tool_call +\n"
    "tool_result). Each thread is one RQ job, so jobs/s are threads/s."
)


@dataclass(frozen=True)
class Measured:
    label: str
    one: Run
    """With one worker process, including the round trips."""
    two: Run
    """With two worker processes."""

    @property
    def per_job(self) -> float:
        """Seconds one worker spends per job when busy."""
        return 1 / self.one.rate

    @classmethod
    def median(cls, repeats: Sequence[Measured]) -> Measured:
        return cls(
            label=repeats[0].label,
            one=Run.median([measured.one for measured in repeats]),
            two=Run.median([measured.two for measured in repeats]),
        )


@dataclass(frozen=True)
class Comparison:
    rq: Measured
    """The baseline: a no-op job on ``rq worker``, the worker class Outerloop uses."""
    rq_simple: Measured
    """The same without a fork per job, to show what the fork costs."""
    outerloop_noop: Measured
    """The no-op job on ``outerloop worker``: the worker process, before our job."""
    one_step: Measured
    two_steps: Measured
    one_step_forking: Measured
    """The 1-step thread with a fork per job, as before the worker pool."""

    @classmethod
    def median(cls, repeats: Sequence[Comparison]) -> Comparison:
        return cls(
            **{
                field.name: Measured.median([getattr(repeat, field.name) for repeat in repeats])
                for field in fields(cls)
            }
        )


COLUMNS = (
    ("", "", 44),
    ("submit", "(client)", 10),
    ("per job", "1 worker", 10),
    ("jobs/s", "1 worker", 10),
    ("jobs/s", "2 workers", 11),
    ("round trip", "p50, idle", 12),
)


def report(comparison: Comparison, jobs: int, round_trips: int, repeat: int, setup: str) -> str:
    rows = [_row(getattr(comparison, field.name)) for field in fields(comparison)]
    return "\n".join(
        [
            f"Outerloop runtime vs raw RQ: {jobs} jobs per run, {round_trips} round trips"
            f"{f', medians of {repeat} passes' if repeat > 1 else ''}",
            setup,
            "",
            _line(title for title, _, _ in COLUMNS),
            _line(subtitle for _, subtitle, _ in COLUMNS),
            *rows,
            "",
            STEP,
            "",
            *_verdict(comparison),
        ]
    )


def _row(measured: Measured) -> str:
    one, two = measured.one, measured.two
    rates = (f"{one.rate:.0f}", f"{two.rate:.0f}")
    return _line((measured.label, _ms(one.submit), _ms(measured.per_job), *rates, _ms(one.round_trip)))


def _line(cells: Iterable[str]) -> str:
    """The label left-aligned, the numbers right-aligned, each in its column's width."""
    (label, width), *numbers = zip(cells, (width for _, _, width in COLUMNS), strict=True)
    return label.ljust(width) + "".join(cell.rjust(width) for cell, width in numbers)


def _verdict(c: Comparison) -> list[str]:
    per_job = c.one_step.per_job / c.rq.per_job
    round_trip = c.one_step.one.round_trip / c.rq.one.round_trip
    met = "met" if per_job <= TARGET else "NOT met"
    return [
        f"Outerloop 1-step job / raw RQ no-op job: {per_job:.2f}x per job, {round_trip:.2f}x round trip"
        f" -> target <= {TARGET}x per job: {met}",
        "where the time goes, per job with one worker:",
        _part("RQ's fork per job (Worker - SimpleWorker)", c.rq, c.rq_simple),
        _part("outerloop worker process vs rq worker (no-op job)", c.outerloop_noop, c.rq),
        _part("our job, asks the model (vs no-op on outerloop worker)", c.one_step, c.outerloop_noop),
        _part("running a tool first (runs a tool, asks - asks)", c.two_steps, c.one_step),
        _part("a fork per job (asking job: rq worker - pool)", c.one_step_forking, c.one_step),
        f"a 1-step job with one worker: {_ms(c.one_step.per_job)} on the pool, "
        f"{_ms(c.one_step_forking.per_job)} with a fork per job",
    ]


def _part(what: str, more: Measured, less: Measured) -> str:
    return f"  {what:52}{_ms(more.per_job - less.per_job):>9}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
