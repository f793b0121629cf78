"""Sign in with Slack against a local server playing Slack's OpenID Connect endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.runtime import Runtime
from tests.console.fake_slack_openid import CLIENT_ID, CLIENT_SECRET, TEAM, FakeSlackOpenId


@pytest.fixture
def slack() -> Iterator[FakeSlackOpenId]:
    with FakeSlackOpenId() as fake:
        yield fake


@pytest.fixture
def env(env: dict[str, str], slack: FakeSlackOpenId) -> dict[str, str]:
    return {
        **env,
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_OPENID_URL": slack.origin,
        "SLACK_TEAM_ID": TEAM,
    }


def through_slack(client: httpx.Client) -> httpx.Response:
    """Press "Sign in with Slack" and follow the redirects to Slack and back."""
    assert "Sign in with Slack" in client.get("/console/signin").text
    return client.get("/console/signin/slack", follow_redirects=True)


def test_signing_in_with_slack_yields_the_slack_user_id(
    anonymous: httpx.Client, slack: FakeSlackOpenId
) -> None:
    landed = through_slack(anonymous)
    assert landed.url.path == "/console/inbox"
    assert 'data-testid="person">U0BOSS<' in landed.text
    assert slack.token_requests[0]["client_secret"] == CLIENT_SECRET


def test_a_wrong_nonce_in_the_id_token_is_refused(anonymous: httpx.Client, slack: FakeSlackOpenId) -> None:
    slack.nonce_override = "someone-elses-nonce"
    landed = through_slack(anonymous)
    assert landed.status_code == 403 and "did not check out" in landed.text
    assert anonymous.get("/console/inbox").status_code == 303


def test_a_callback_this_browser_did_not_start_is_refused(
    anonymous: httpx.Client, base_url: str, slack: FakeSlackOpenId
) -> None:
    to_slack = anonymous.get("/console/signin/slack").headers["location"]
    back = httpx.get(to_slack).headers["location"]
    with httpx.Client(base_url=base_url) as stranger:
        answer = stranger.get(back)
        assert answer.status_code == 403 and "not started here" in answer.text
        assert stranger.get("/console/inbox").status_code == 303
    assert slack.token_requests == []


def test_another_workspace_may_not_sign_in(anonymous: httpx.Client, slack: FakeSlackOpenId) -> None:
    slack.team = "T0OTHER"
    landed = through_slack(anonymous)
    assert landed.status_code == 403 and "workspace may not sign in" in landed.text


def test_slack_saying_no_is_a_clear_refusal(anonymous: httpx.Client) -> None:
    answer = anonymous.get("/console/signin/slack/callback", params={"error": "access_denied"})
    assert answer.status_code == 403 and "access_denied" in answer.text


def test_without_slack_settings_the_button_is_not_offered(anonymous: httpx.Client, runtime: Runtime) -> None:
    runtime.settings.slack_client_id = None
    assert "Sign in with Slack" not in anonymous.get("/console/signin").text
    assert anonymous.get("/console/signin/slack").status_code == 404
