"""``python -m bench cli``: how long ``outerloop --help`` takes next to a bare click program.

The CLI imports the model SDKs, Bolt, the web server and MCP only in the commands that use
them; this line shows whether that still holds (target: at most 1.5x ``import click``).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET = 1.5
COMMANDS = {
    "python -c 'import click'": [sys.executable, "-c", "import click"],
    "outerloop --help": [str(Path(sys.executable).with_name("outerloop")), "--help"],
}


def _median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(runs: int) -> dict[str, float]:
    """The median wall time of each command over ``runs`` runs, alternating to share the load."""
    return {name: _median_seconds(command, runs) for name, command in COMMANDS.items()}


def report(medians: dict[str, float]) -> str:
    bare, ours = medians.values()
    ratio = ours / bare
    verdict = "ok" if ratio <= TARGET else f"over the {TARGET}x target"
    lines = [f"{name:<28} {seconds * 1000:8.1f} ms" for name, seconds in medians.items()]
    return "\n".join([*lines, f"{'ratio':<28} {ratio:8.2f}x  ({verdict})"])
