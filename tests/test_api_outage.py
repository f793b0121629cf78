"""A Redis outage seen from the web app: every route answers 503 JSON with Retry-After, the log
says so once, and the app serves again as soon as Redis is back. The real ``outerloop web``
process runs against a private redis-server that the test kills and restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channels.webhook import signature
from tests.fake_slack import BOT_TOKEN, FakeSlack
from tests.services import RedisServer, Workers, cli_args, free_port, wait_for
from tests.slack.signed import SIGNING_SECRET, event_callback, mention, signed_headers

TOKEN = {"Authorization": "Bearer test-token"}
HOOK_SECRET = "a-webhook-secret-long-enough"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web(
    env: dict[str, str], redis_server: RedisServer, fake_slack: FakeSlack, tmp_path: Path
) -> Iterator[tuple[httpx.Client, Path]]:
    """``outerloop web`` on a free port against ``redis_server``; yields a client and its log."""
    hooks = tmp_path / "webhooks.toml"
    hooks.write_text(
        f'[webhooks.ops]\nagent = "notes"\nprompt = "An alert fired"\nsecret = "{HOOK_SECRET}"\n'
    )
    port = free_port()
    log = tmp_path / "web.log"
    slack = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
    }
    process = Workers(
        {**env, **slack, "REDIS_URL": redis_server.url, "PORT": str(port), "OUTERLOOP_WEBHOOKS": str(hooks)},
        log,
        args=cli_args("web"),
    )
    process.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        wait_for(lambda: _answers(client), "outerloop web to serve")
        yield client, log
    process.stop_all()


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def _webhook(client: httpx.Client, delivery: str) -> httpx.Response:
    body = json.dumps({"alert": "disk full"}).encode()
    timestamp = str(int(time.time()))
    headers = {
        "X-Outerloop-Timestamp": timestamp,
        "X-Outerloop-Delivery": delivery,
        "X-Outerloop-Signature": signature(HOOK_SECRET.encode(), timestamp, delivery, body),
    }
    return client.post("/webhooks/ops", content=body, headers=headers)


def _slack_mention(client: httpx.Client, event_id: str) -> httpx.Response:
    body = json.dumps(event_callback(mention("deploy the latest"), event_id=event_id))
    return client.post("/slack/events", content=body, headers=signed_headers(body))


def test_a_redis_outage_answers_503_json_and_is_logged_once(
    web: tuple[httpx.Client, Path], redis_server: RedisServer
) -> None:
    client, log = web
    thread_id = client.post("/threads", headers=TOKEN, json={"agent": "notes", "text": "hi"}).json()["id"]

    redis_server.kill()
    calls = [
        ("GET", "/threads", None),
        ("GET", f"/threads/{thread_id}", None),
        ("POST", "/threads", {"agent": "notes", "text": "hi"}),
        ("POST", f"/threads/{thread_id}/pause", None),
    ]
    for round_ in range(5):
        for method, path, body in calls:
            response = client.request(method, path, headers=TOKEN, json=body)
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["retry-after"] == "5"
            assert "Redis" in response.json()["detail"]
        hook = _webhook(client, f"d-{round_}")
        assert (hook.status_code, hook.headers["retry-after"]) == (503, "5"), hook.text
        slack = _slack_mention(client, f"Ev{round_}")
        assert (slack.status_code, slack.headers["retry-after"]) == (503, "5"), slack.text
    health = client.get("/healthz")
    assert (health.status_code, health.json()) == (503, {"status": "unavailable"})

    redis_server.start()
    wait_for(lambda: client.get("/threads", headers=TOKEN).status_code == 200, "the API to serve again")
    assert client.get(f"/threads/{thread_id}", headers=TOKEN).json()["id"] == thread_id
    assert client.post("/threads", headers=TOKEN, json={"agent": "notes", "text": "again"}).status_code == 201
    assert _webhook(client, "d-after").status_code == 202

    said = wait_for(lambda: "redis.available" in log.read_text() and log.read_text(), "the log to say so")
    assert "Traceback" not in said and "Exception in ASGI application" not in said
    assert said.count("redis.unavailable") == 1, said
    assert said.count("redis.available") == 1, said
