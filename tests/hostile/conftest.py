"""Fixtures for the hostile-input suite: the web app with every door open (API, Slack, a webhook),
served over real HTTP, and a watch on the logs for errors and tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from bot.runtime import Runtime
from bot.web.app import create_app
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.hostile.processes import WebProcess
from tests.services import serve
from tests.slack.signed import ALICE, SIGNING_SECRET

HOOK_SECRET = "hostile-suite-webhook-secret"
HOOKS = f"""
[webhooks.release]
agent = "notes"
prompt = "Release ${{ref}}"
secret = "{HOOK_SECRET}"
"""
TOKEN = {"Authorization": "Bearer test-token"}


@pytest.fixture
def env(env: dict[str, str], fake_slack: FakeSlack, tmp_path: Path) -> dict[str, str]:
    """The suite's environment plus Slack (its Web API the fake) and one webhook, ``release``."""
    hooks = tmp_path / "webhooks.toml"
    hooks.write_text(HOOKS)
    return {
        **env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "OUTERLOOP_APPROVERS": ALICE,
        "OUTERLOOP_WEBHOOKS": str(hooks),
    }


@pytest.fixture
def base_url(runtime: Runtime) -> Iterator[str]:
    with serve(create_app(runtime)) as url:
        yield url


@pytest.fixture
def web(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def web_process(env: dict[str, str], tmp_path: Path) -> Iterator[WebProcess]:
    """``outerloop web`` in a process of its own, its log in ``web.log``."""
    process = WebProcess(env, tmp_path / "web.log")
    process.start()
    yield process
    process.stop_all()


@dataclass
class LogWatch:
    """What the app logged while a test ran: structlog events and stdlib records (uvicorn, Bolt)."""

    events: list[MutableMapping[str, Any]]
    caplog: pytest.LogCaptureFixture

    def troubles(self) -> list[str]:
        """Errors and tracebacks: a hostile request may be refused, never make the app fail."""
        found = [
            str(event)
            for event in self.events
            if event.get("log_level") in ("error", "critical") or "exc_info" in event or "exception" in event
        ]
        found += [
            record.getMessage()
            for record in self.caplog.get_records("call")
            if record.exc_info or record.levelno >= logging.ERROR
        ]
        return found


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogWatch]:
    """Fails the test if the app logged an error or a traceback."""
    caplog.set_level(logging.INFO)
    with capture_logs() as events:
        watch = LogWatch(events, caplog)
        yield watch
    assert watch.troubles() == []
