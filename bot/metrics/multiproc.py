"""Where a host's processes keep their metrics, so the scrape of one sees them all.

prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported; so the
directory must be chosen, and exist, before anything imports it. Without it every process
keeps its own metrics in memory, which is right for a single process and for nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def directory() -> Path | None:
    """The shared directory, when this process writes its metrics there."""
    value = os.environ.get(VARIABLE)
    return Path(value) if value else None


def ensure_directory() -> None:
    """Create the configured directory if it is missing: prometheus-client writes into it
    without creating it, and a missing one would fail the first metric, not the start."""
    path = directory()
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)


def start_afresh(path: Path) -> None:
    """Empty ``path`` and point this process and its children at it: the files of an earlier
    run hold counts that are not this run's (call it before the processes start)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[VARIABLE] = str(path.resolve())


def join_local(state_dir: Path) -> None:
    """Count into ``outerloop dev``'s directory (``state_dir/metrics``) when it exists and no other
    is set, so that a thread launched or answered from the CLI here is counted with the rest."""
    local = state_dir / "metrics"
    if directory() is None and local.is_dir():
        os.environ[VARIABLE] = str(local.resolve())


def process_gone(pid: int) -> None:
    """Drop what a dead process said about now (its live gauges); its counts stay."""
    path = directory()
    if path is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
