"""Nothing secret in the logs: a whole run with real processes (``outerloop web`` with Socket Mode,
``outerloop worker``s) through every door but mail, with a distinctive value for every secret, and
then every line the processes wrote is searched for each of them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from channels.slack.blocks import APPROVE
from channels.webhook import signature as webhook_signature
from tests.fake_anthropic import FakeAnthropic, tool_use_reply
from tests.fake_slack import FakeSlack
from tests.fake_socket_mode import FakeSocketMode
from tests.hostile.processes import WebProcess
from tests.services import Workers, wait_for
from tests.slack.signed import ALICE, CAROL, button_value, click, event_callback, mention, signed_headers

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-SECRET-bot-7f3a9c",
    "SLACK_SIGNING_SECRET": "SECRET-signing-51be0d",
    "SLACK_APP_TOKEN": "xapp-SECRET-app-2c8e41",
    "OUTERLOOP_API_TOKEN": "SECRET-api-token-93d0f2",
    "RELEASE_HOOK_SECRET": "SECRET-webhook-e61b77",
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-4a1d5e",
}
API = {"Authorization": f"Bearer {SECRETS['OUTERLOOP_API_TOKEN']}"}
SIGNING_SECRET = SECRETS["SLACK_SIGNING_SECRET"]


@pytest.fixture
def anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def socket(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as endpoint:
        fake_slack.socket_url = endpoint.url
        yield endpoint


@pytest.fixture
def secret_env(env: dict[str, str], anthropic: FakeAnthropic, tmp_path: Path) -> dict[str, str]:
    hooks = tmp_path / "secret-hooks.toml"
    hooks.write_text(
        '[webhooks.release]\nagent = "notes"\nprompt = "Release ${ref}"\nsecret_env = "RELEASE_HOOK_SECRET"\n'
    )
    return {
        **env,
        **SECRETS,
        "ANTHROPIC_BASE_URL": anthropic.base_url,
        "OUTERLOOP_WEBHOOKS": str(hooks),
        # The shared API token answers as the approver named in the body (per-person tokens
        # aside, this is how an integration that authenticates people itself answers).
        "OUTERLOOP_API_TRUSTED_RESPONDER": "true",
    }


@pytest.fixture
def secret_web(secret_env: dict[str, str], socket: FakeSocketMode, tmp_path: Path) -> Iterator[WebProcess]:
    web = WebProcess(secret_env, tmp_path / "web.log")
    web.start()
    yield web
    web.stop_all()


@pytest.fixture
def worker_processes(secret_env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(secret_env, tmp_path / "workers.log")
    pool.start(2)
    yield pool
    pool.stop_all()


def post_to_slack(http: httpx.Client, body: str, content_type: str, secret: str = SIGNING_SECRET) -> int:
    headers = {"Content-Type": content_type, **signed_headers(body, secret=secret)}
    return http.post("/slack/events", content=body, headers=headers).status_code


def thread_status(http: httpx.Client, thread_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = http.get(f"/threads/{thread_id}", headers=API).json()
    return shown


def deploy_replies() -> list[Any]:
    return [
        tool_use_reply("list_tags", {"limit": 5}),
        tool_use_reply("deploy", {"tag": "v1.1.0", "environment": "staging"}, "toolu_02"),
    ]


def slack_flow(http: httpx.Client, fake_slack: FakeSlack, anthropic: FakeAnthropic) -> None:
    anthropic.script(*deploy_replies())
    assert (
        post_to_slack(
            http, json.dumps(event_callback(mention("deploy the latest", user=CAROL))), "application/json"
        )
        == 200
    )
    post = wait_for(lambda: next((p for p in fake_slack.posts() if p.get("blocks")), None), "the approval")
    anthropic.script(tool_use_reply("done_for_now", {"message": "Deployed v1.1.0."}, "toolu_03"))
    form = urlencode({"payload": json.dumps(click(APPROVE, button_value(post), ALICE, post))})
    assert post_to_slack(http, form, "application/x-www-form-urlencoded") == 200
    wait_for(lambda: any(p["text"].startswith("Deployed") for p in fake_slack.posts()), "the reply in Slack")


def api_flow(http: httpx.Client, anthropic: FakeAnthropic) -> None:
    anthropic.script(*deploy_replies())
    launched = http.post("/threads", headers=API, json={"agent": "deploy", "text": "ship it"})
    thread_id = launched.json()["id"]
    shown = wait_for(
        lambda: (s := thread_status(http, thread_id))["status"] == "awaiting_human" and s, "the request"
    )
    anthropic.script(tool_use_reply("done_for_now", {"message": "Deployed."}, "toolu_03"))
    answer = {"request_id": shown["pending"]["request_id"], "approved": True, "responder": ALICE}
    assert http.post(f"/threads/{thread_id}/responses", headers=API, json=answer).status_code == 202
    wait_for(lambda: thread_status(http, thread_id)["status"] == "done", "the API thread to finish")


def webhook_flow(http: httpx.Client, anthropic: FakeAnthropic) -> None:
    anthropic.script(tool_use_reply("done_for_now", {"message": "Noted."}))
    body, at = b'{"ref": "v1.1.0"}', str(int(time.time()))
    signed = webhook_signature(SECRETS["RELEASE_HOOK_SECRET"].encode(), at, "d-1", body)
    headers = {"X-Outerloop-Timestamp": at, "X-Outerloop-Delivery": "d-1", "X-Outerloop-Signature": signed}
    thread_id = http.post("/webhooks/release", content=body, headers=headers).json()["id"]
    wait_for(lambda: thread_status(http, thread_id)["status"] == "done", "the webhook's thread to finish")


def refusals(http: httpx.Client) -> None:
    """Requests each door refuses: their log lines must not quote the secret they got wrong."""
    body = json.dumps(event_callback(mention("deploy")))
    assert post_to_slack(http, body, "application/json", secret="not-the-signing-secret") == 401
    assert http.get("/threads", headers={"Authorization": "Bearer not-the-token"}).status_code == 401
    wrong = {"X-Outerloop-Timestamp": str(int(time.time())), "X-Outerloop-Delivery": "d-2"}
    assert (
        http.post(
            "/webhooks/release", content=b"{}", headers={**wrong, "X-Outerloop-Signature": "x"}
        ).status_code
        == 401
    )


def test_a_whole_run_through_every_door_logs_no_secret(
    secret_web: WebProcess,
    worker_processes: Workers,
    fake_slack: FakeSlack,
    anthropic: FakeAnthropic,
    socket: FakeSocketMode,
) -> None:
    wait_for(lambda: socket.connected, "the web process to connect over Socket Mode")
    with httpx.Client(base_url=secret_web.url, timeout=30) as http:
        slack_flow(http, fake_slack, anthropic)
        api_flow(http, anthropic)
        webhook_flow(http, anthropic)
        refusals(http)
    assert {call.token for call in fake_slack.calls} >= {
        SECRETS["SLACK_BOT_TOKEN"],
        SECRETS["SLACK_APP_TOKEN"],
    }
    assert anthropic.requests and all(
        SECRETS["ANTHROPIC_API_KEY"] in str(r.headers) for r in anthropic.requests
    )
    secret_web.stop_all()
    worker_processes.stop_all()
    files = {"web": secret_web.log, "workers": worker_processes.log}
    logs = {name: path.read_text() for name, path in files.items() if path is not None}
    assert "slack.received" in logs["web"] and "webhook.received" in logs["web"], "the web log is captured"
    assert "event.recorded" in logs["workers"], "the workers' log is captured"
    leaks = [(name, secret) for name, text in logs.items() for secret in SECRETS.values() if secret in text]
    assert leaks == []
