"""Slack ack latency: how fast ``POST /slack/events`` answers signed events under load.

Run from the repository root: ``python bench/slack_ack.py [--rate 200] [--seconds 10]``.

It starts a private redis-server on a free port and ``outerloop web`` (uvicorn, the real
process) on loopback with a Slack app configured, then sends signed ``app_mention``
events at a fixed rate, each opening a new thread (signature check, route binding,
thread creation and two RQ enqueues per event). Latency is measured open-loop from
each request's scheduled send time, so a server that falls behind is charged for
it. After a few seconds of warm-up at the full rate (reported on its own line),
``GET /healthz`` at the same rate gives the raw-HTTP baseline (client, uvicorn, one
Redis PING) and then the events are measured; the ratio is what the Slack path adds.
Target: p99 < 50 ms at 200 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script: make bot/ and tests/ importable

from bot.commands.dev_state import free_port, private_redis  # noqa: E402
from tests.fake_slack import BOT_TOKEN, FakeSlack  # noqa: E402
from tests.slack.signed import SIGNING_SECRET, event_callback, mention, signed_headers  # noqa: E402

TARGET_P99_MS = 50.0
WARM_UP_SECONDS = 3.0
"""Full-rate traffic on each path before measuring, so pools of connections and threads have
grown. Runs here also show one stall of up to about 100 ms, a few seconds into the load, on
whichever path is running then (the raw baseline too): compare the max columns."""

Request = Callable[[], tuple[str, str, bytes | None, dict[str, str]]]
"""Makes one request: method, path, body, headers."""


@dataclass
class Run:
    latencies_ms: list[float]
    errors: int

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def signed_mention() -> tuple[str, str, bytes | None, dict[str, str]]:
    body = json.dumps(event_callback(mention("deploy the latest")))
    headers = {"Content-Type": "application/json", **signed_headers(body)}
    return "POST", "/slack/events", body.encode(), headers


def health() -> tuple[str, str, bytes | None, dict[str, str]]:
    return "GET", "/healthz", None, {}


async def load(client: httpx.AsyncClient, make: Request, rate: float, seconds: float) -> Run:
    """Send ``rate`` requests a second for ``seconds``, open-loop; time each from its slot."""
    run = Run([], 0)
    loop = asyncio.get_running_loop()

    async def one(slot: float) -> None:
        method, path, body, headers = make()
        response = await client.request(method, path, content=body, headers=headers)
        run.latencies_ms.append((loop.time() - slot) * 1000)
        if response.status_code != 200:
            run.errors += 1

    start = loop.time() + 0.05
    tasks = []
    for n in range(int(rate * seconds)):
        slot = start + n / rate
        await asyncio.sleep(max(0.0, slot - loop.time()))
        tasks.append(asyncio.create_task(one(slot)))
    await asyncio.gather(*tasks)
    return run


def serve_web(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bot.cli", "web"]
    with log.open("ab") as output:
        return subprocess.Popen(command, env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise SystemExit(f"outerloop web exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"outerloop web did not come up on {url}")


def report(label: str, run: Run) -> str:
    p50, p99 = run.percentile(0.50), run.percentile(0.99)
    return (
        f"{label}: {len(run.latencies_ms)} requests, {run.errors} errors, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(run.latencies_ms):.1f} ms, "
        f"mean {statistics.fmean(run.latencies_ms):.1f} ms"
    )


async def measure(url: str, rate: float, seconds: float) -> tuple[list[Run], Run, Run]:
    """The warm-ups of both paths (reported, not counted), then the baseline and the events."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        warm_ups = [
            await load(client, health, rate, WARM_UP_SECONDS),
            await load(client, signed_mention, rate, WARM_UP_SECONDS),
        ]
        baseline = await load(client, health, rate, seconds)
        slack = await load(client, signed_mention, rate, seconds)
    return warm_ups, baseline, slack


def run(rate: float, seconds: float) -> tuple[list[Run], Run, Run]:
    """A private Redis, the fake Slack Web API (for Bolt's auth.test) and ``outerloop web``."""
    with (
        tempfile.TemporaryDirectory(prefix="slack-ack-") as scratch,
        FakeSlack() as slack,
        private_redis(Path(scratch) / "redis", free_port()) as redis_url,
    ):
        port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "OUTERLOOP_HOST": "127.0.0.1",
            "PORT": str(port),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "ANTHROPIC_API_KEY": "",
        }
        env.pop("SLACK_APP_TOKEN", None)
        log = Path(scratch) / "web.log"
        web = serve_web(env, log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, web, log)
            return asyncio.run(measure(url, rate, seconds))
        finally:
            web.terminate()
            web.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each measurement runs")
    arguments = parser.parse_args()
    warm_ups, baseline, events = run(arguments.rate, arguments.seconds)
    print(f"Slack ack latency over loopback, {arguments.rate:.0f}/s for {arguments.seconds:.0f} s each")
    print(report(f"  warm-up, {WARM_UP_SECONDS:.0f} s, not counted: GET /healthz  ", warm_ups[0]))
    print(report(f"  warm-up, {WARM_UP_SECONDS:.0f} s, not counted: Slack events", warm_ups[1]))
    print(report("  raw HTTP baseline (GET /healthz)        ", baseline))
    print(report("  signed Slack events (POST /slack/events)", events))
    ratio50 = events.percentile(0.50) / baseline.percentile(0.50)
    ratio99 = events.percentile(0.99) / baseline.percentile(0.99)
    verdict = "met" if events.percentile(0.99) < TARGET_P99_MS else "MISSED"
    print(f"  ratio events/baseline: p50 {ratio50:.1f}x, p99 {ratio99:.1f}x")
    print(f"  target p99 < {TARGET_P99_MS:.0f} ms: {verdict}")
    # Client, server and Redis share this machine's CPUs: other load shows up in the tail.
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (1 min) at the end")
    if any(run.errors for run in (*warm_ups, baseline, events)):
        raise SystemExit("some requests failed; see the counts above")


if __name__ == "__main__":
    main()
