"""The system under fault: worker processes, a scheduler, the web app over HTTP, the fake Slack,
and a deploy that counts its runs. The fault tests and ``python -m bench chaos`` both use it.

Threads start as Slack conversations (so every human request must reach a Slack message) and
are answered through the HTTP API.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx

from agent.events import Origin
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.faults.approver import JSON, Approver, fetch
from tests.faults.effects import Executions
from tests.faults.verdict import Outcome, judge
from tests.services import Workers, cli_args, serve, wait_for

SLACK_CHANNEL = "C0FAULTS"
SLACK_TEAM = "T0TEAM"


TRUSTED_APPROVER = {"OUTERLOOP_API_TRUSTED_RESPONDER": "true"}
"""The approver answers with the shared API token in the names of the people it plays (alice,
bob), as an integration that authenticates its people itself."""


def slack_env(fake: FakeSlack) -> dict[str, str]:
    """Settings that make Slack a configured channel whose Web API is ``fake``."""
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "faults", "SLACK_API_URL": fake.api_url}


def settings_from(env: dict[str, str]) -> Settings:
    """The settings a process started with ``env`` would read."""
    with mock.patch.dict(os.environ, env):
        return Settings()


@dataclass
class Rig:
    runtime: Runtime
    api: httpx.Client
    slack: FakeSlack
    workers: Workers
    deploys: Path
    """The counting deploy's log (``tests.faults.effects``)."""

    def start_scheduler(self) -> None:
        self.workers.start(1, args=cli_args("scheduler"))

    def launch(self, count: int = 1) -> list[str]:
        """Start ``count`` deploy threads as Slack conversations; returns their ids."""
        ids = []
        for _ in range(count):
            ts = f"{time.time():.6f}"
            origin = Origin(
                channel="slack",
                sender="U0ALICE",
                address={"team": SLACK_TEAM, "channel": SLACK_CHANNEL, "thread_ts": ts, "ts": ts},
            )
            ids.append(self.runtime.launch("deploy", "ship the latest to staging", origin=origin).thread.id)
        return ids

    def executions(self) -> Executions:
        return Executions.read(self.deploys)

    def outcome(self, approver: Approver, expected: int, holder_survives: bool = True) -> Outcome:
        """Once the threads settled: wait for running deploys and owed messages, then count."""
        wait_for(lambda: not [s for s in self.executions().running if _alive(s.pid)], "deploys to end", 30)
        threads = {thread_id: self.thread(thread_id) for thread_id in approver.accepted}

        def count() -> Outcome:
            posts = self.slack.posts()
            return judge(threads, self.executions(), approver.accepted, expected, posts, holder_survives)

        with contextlib.suppress(AssertionError):  # what is still undelivered then counts as such
            wait_for(lambda: count().undelivered == 0, "the requests' Slack messages", timeout=10)
        return count()

    def thread(self, thread_id: str) -> JSON:
        """The thread as the API shows it, waiting while the API cannot answer."""
        return wait_for(lambda: fetch(self.api, thread_id), f"thread {thread_id} from the API")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def rig(env: dict[str, str], slack: FakeSlack, deploys: Path, output: Path | None) -> Iterator[Rig]:
    """The web app served for ``env`` and an empty pool of processes with ``env``; ``output``
    collects the processes' output.

    The rig answers requests through the API as an integration that authenticated the people
    it answers for (``OUTERLOOP_API_TRUSTED_RESPONDER``), so it may name alice and bob."""
    env = {**env, "OUTERLOOP_API_TRUSTED_RESPONDER": "true"}
    runtime = Runtime.from_settings(settings_from(env))
    workers = Workers(env, output)
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as api:
        try:
            yield Rig(runtime, api, slack, workers, deploys)
        finally:
            workers.stop_all()
