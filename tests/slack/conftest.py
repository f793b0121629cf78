"""Fixtures for Slack tests: the fake Web API, Slack settings, and the web app taking signed requests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.runtime import Runtime
from bot.web.app import create_app
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.services import serve
from tests.slack.signed import ALICE, BOB, OPS, SIGNING_SECRET, SignedSlack


@pytest.fixture
def fake_slack(fake_slack: FakeSlack) -> FakeSlack:
    """The suite's fake Slack, where the ops group has bob in it."""
    fake_slack.groups[OPS] = [BOB]
    return fake_slack


@pytest.fixture
def env(env: dict[str, str], fake_slack: FakeSlack) -> dict[str, str]:
    """The suite's environment plus a Slack app whose Web API is the fake; alice and the ops
    group (bob) approve."""
    return {
        **env,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "OUTERLOOP_APPROVERS": f"{ALICE},{OPS}",
    }


@pytest.fixture
def slack(runtime: Runtime) -> Iterator[SignedSlack]:
    """Slack's side of ``POST /slack/events``: signed events and clicks to the served web app."""
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield SignedSlack(http)
