"""``python -m bench``: measure, print the table. See the package docstring.

``python -m bench long``: folding and rendering as a thread grows (``bench.long``).
``python -m bench chaos``: the fault matrix at scale (``bench.chaos``).
``python -m bench peer``: the deploy thread on Outerloop and on LangGraph (``bench.peer``).
``python -m bench cli``: ``outerloop --help`` next to ``python -c "import click"`` (``bench.cli_start``)."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TypeVar

import click
import redis
import rq
from rq import SimpleWorker, Worker

from bench import cli_start, inflight, long
from bench.chaos import FAULTS, broken, run_fault, table
from bench.long import SIZES
from bench.measure import Subject, measure
from bench.peer import compare
from bench.peer import report as peer_report
from bench.report import Comparison, Measured, report
from bench.steps import measure_steps, report_steps
from bench.subjects import (
    noop_on_outerloop_worker,
    noop_on_rq_worker,
    thread_on_forking_worker,
    thread_on_outerloop_worker,
)
from bot import logs
from tests.services import RedisServer

FC = TypeVar("FC", bound=Callable[..., object])


@click.group(invoke_without_command=True)
@click.option(
    "-n", "--jobs", default=200, show_default=True, type=click.IntRange(min=20), help="Jobs per run."
)
@click.option(
    "--round-trips",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="Jobs timed one at a time with one idle worker.",
)
@click.option(
    "--repeat",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Measure everything this many times and print the medians.",
)
@click.pass_context
def main(context: click.Context, jobs: int, round_trips: int, repeat: int) -> None:
    """Compare an Outerloop agent step with a raw RQ no-op job, on real worker processes.

    Subcommands run the other benchmarks instead."""
    if context.invoked_subcommand is None:
        _runtime(jobs, round_trips, repeat)


@main.command("long")
@click.option(
    "--events",
    "sizes",
    multiple=True,
    default=SIZES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Thread lengths to measure (repeat the option for several).",
)
def long_threads(sizes: tuple[int, ...]) -> None:
    """Folding and rendering the context of 10, 1,000 and 10,000-event threads, per event, and a
    whole step of the shortest and the longest against a private Redis."""
    load = os.getloadavg()
    click.echo(long.report(long.measure(sorted(sizes)), load))
    with TemporaryDirectory(prefix="outerloop-bench-") as directory:
        server = RedisServer(Path(directory), durable=False)
        server.start()
        try:
            cases = measure_steps(server.url, (min(sizes), max(sizes)))
        finally:
            server.stop()
    click.echo("\n".join(["", *report_steps(cases)]))


@main.command("cli")
@click.option("--runs", default=10, show_default=True, type=click.IntRange(min=1), help="Runs of each.")
def cli_start_time(runs: int) -> None:
    """The CLI's cold start: `outerloop --help` against a bare click program (target <= 1.5x)."""
    click.echo(cli_start.report(cli_start.measure(runs)))


def _runtime(jobs: int, round_trips: int, repeat: int) -> None:
    # Runtime.launch logs every thread it starts; only the table belongs on stdout.
    logs.configure(level=logging.WARNING)
    # Other work on the machine moves every number; the load average before we add ours says how much.
    load = os.getloadavg()[0]
    with TemporaryDirectory(prefix="outerloop-bench-") as directory:
        server = RedisServer(Path(directory), durable=False)
        server.start()
        try:
            connection = redis.Redis.from_url(server.url)
            connection.config_set("notify-keyspace-events", "Kt")
            comparison = Comparison.median(
                [_measure_all(server.url, connection, jobs, round_trips) for _ in range(repeat)]
            )
            setup = _setup(connection, load)
        finally:
            server.stop()
    click.echo(report(comparison, jobs, round_trips, repeat, setup))


def _measure_all(url: str, connection: redis.Redis, jobs: int, round_trips: int) -> Comparison:
    both = partial(_both, connection=connection, jobs=jobs, round_trips=round_trips)
    return Comparison(
        rq=both(noop_on_rq_worker(url, connection, Worker)),
        rq_simple=both(noop_on_rq_worker(url, connection, SimpleWorker)),
        outerloop_noop=both(noop_on_outerloop_worker(url, connection)),
        one_step=both(thread_on_outerloop_worker(url, "one_step", "Outerloop job, asks the model")),
        two_steps=both(thread_on_outerloop_worker(url, "two_steps", "Outerloop job, runs a tool, asks")),
        one_step_forking=both(
            thread_on_forking_worker(url, "one_step", "Outerloop job, asks the model, fork/job")
        ),
    )


def _both(subject: Subject, connection: redis.Redis, jobs: int, round_trips: int) -> Measured:
    click.echo(f"measuring: {subject.label}", err=True)
    return Measured(
        label=subject.label,
        one=measure(subject, connection, jobs, workers=1, round_trips=round_trips),
        two=measure(subject, connection, jobs, workers=2),
    )


def _setup(connection: redis.Redis, load: float) -> str:
    server = connection.info("server")["redis_version"]
    cpus = os.cpu_count()
    return f"rq {rq.__version__}, redis-server {server}, {cpus} CPUs, load average at start {load:.1f}"


@main.command("inflight")
@click.option(
    "--conversations",
    "sizes",
    multiple=True,
    default=(100, 500),
    show_default=True,
    type=click.IntRange(min=1),
    help="Conversations launched at once (repeat the option for several).",
)
@click.option(
    "--delay", default=1.0, show_default=True, type=click.FloatRange(min=0), help="Seconds per model call."
)
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(min=1), help="outerloop worker processes."
)
@click.option(
    "--callers", default=2, show_default=True, type=click.IntRange(min=1), help="outerloop caller processes."
)
def inflight_conversations(sizes: tuple[int, ...], delay: float, workers: int, callers: int) -> None:
    """Conversations x 2 slow model calls: Outerloop next to one asyncio process (exit 1 if one
    conversation did not finish or a model call was made twice)."""
    logs.configure(level=logging.WARNING)
    runs = []
    for size in sizes:
        click.echo(f"measuring: {size} conversations", err=True)
        runs.extend(inflight.measure(size, delay, workers, callers))
    click.echo(inflight.table(runs, delay))
    if any(run.done < run.conversations or run.repeated for run in runs):
        raise SystemExit(1)


def _count(flag: str, default: int, what: str) -> Callable[[FC], FC]:
    """An option taking a positive whole number."""
    return click.option(flag, default=default, show_default=True, type=click.IntRange(min=1), help=what)


@main.command()
@_count("--threads", 100, "Threads on each side.")
@_count("--processes", 2, "Outerloop worker processes (outerloop worker's default).")
def peer(threads: int, processes: int) -> None:
    """The deploy thread on Outerloop's workers and as a LangGraph graph, both durable (see bench.peer)."""
    if importlib.util.find_spec("langgraph") is None:
        raise click.ClickException("LangGraph is not installed: pip install -e '.[bench]'")
    logs.configure(level=logging.WARNING)
    load = os.getloadavg()
    ours, least, theirs = compare(threads, processes)
    loads = ", ".join(f"{value:.2f}" for value in load)
    click.echo(peer_report(ours, least, theirs, f"{os.cpu_count()} CPUs, load average at start: {loads}"))


@main.command()
@_count("--threads", 50, "Threads per fault.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=2), help="Worker processes.")
@_count("--rounds", 3, "Times each fault is injected.")
@click.option(
    "--timeout",
    default=180.0,
    show_default=True,
    type=click.FloatRange(min=1),
    help="Seconds the threads may take to settle after the last fault.",
)
def chaos(threads: int, workers: int, rounds: int, timeout: float) -> None:
    """Inject each fault while approved deploys run; exit 1 if any promise broke (see bench.chaos)."""
    logs.configure(level=logging.WARNING)
    rows = []
    for fault in FAULTS:
        click.echo(f"injecting: {fault.name}", err=True)
        rows.append(run_fault(fault, threads, workers, rounds, timeout))
    click.echo(table(rows))
    for row in rows:
        for problem in row.outcome.problems():
            click.echo(f"{row.fault}: {problem}", err=True)
    if broken(rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
