"""The attacks that once worked, each as a named test: oversized unauthenticated bodies, errors that
echoed the input, timestamps that were not numbers."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.runtime import Runtime
from bot.web.app import create_app
from channels.webhook import signature as webhook_signature
from tests.hostile.conftest import HOOK_SECRET, TOKEN, LogWatch
from tests.hostile.processes import WebProcess
from tests.hostile.uploads import upload
from tests.services import serve, wait_for
from tests.slack.signed import event_callback, mention, signed_headers

HUGE = 50 * 1024 * 1024
"""Far over any limit: a server that read it all would be seen sending it all."""
LIMIT = 1024 * 1024


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("path", ["/threads", "/slack/events", "/webhooks/release"])
def test_an_unauthenticated_upload_far_over_the_limit_is_refused_before_it_is_read(
    base_url: str, runtime: Runtime, logs: LogWatch, path: str, chunked: bool
) -> None:
    answer = upload(base_url, path, HUGE, {"Content-Type": "application/json"}, chunked=chunked)
    assert answer.status == 413
    assert "larger than" in answer.body["detail"]
    assert answer.sent < HUGE // 2, "the server stopped reading and closed the connection"
    assert runtime.store.ids() == []
    [refusal] = [e for e in logs.events if e["event"] == "http.rejected"]
    assert refusal["status"] == 413 and refusal["path"] == path


def test_the_body_limit_is_a_setting_and_webhooks_keep_their_own(runtime: Runtime) -> None:
    runtime.settings.max_body_bytes = 1000
    body = json.dumps({"ref": "v1", "padding": "p" * 5000}).encode()
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as web:
        launch = {"agent": "deploy", "text": "t" * 2000}
        too_big = web.post("/threads", headers=TOKEN, json=launch)
        assert too_big.status_code == 413
        assert too_big.json() == {"detail": "the request body is larger than 1000 bytes"}
        at = str(int(time.time()))
        hook = web.post(
            "/webhooks/release",
            content=body,
            headers={
                "X-Outerloop-Timestamp": at,
                "X-Outerloop-Delivery": "d-1",
                "X-Outerloop-Signature": webhook_signature(HOOK_SECRET.encode(), at, "d-1", body),
            },
        )
        assert hook.status_code == 202, hook.text


def test_a_10_mb_text_is_refused_with_a_short_answer(web: httpx.Client, runtime: Runtime) -> None:
    huge = web.post("/threads", headers=TOKEN, json={"agent": "deploy", "text": "x" * 10_000_000})
    assert huge.status_code == 413
    assert len(huge.content) < 200
    # Within the body limit but over the field's: a 422 that quotes a prefix of the text, not the text.
    long = web.post("/threads", headers=TOKEN, json={"agent": "deploy", "text": "y" * 900_000})
    assert long.status_code == 422
    assert len(long.content) < 1000
    [error] = long.json()["errors"]
    assert error["loc"] == ["body", "text"] and len(error["input"]) <= 100
    assert long.json()["detail"].startswith("the request is not valid: body.text: String should have at most")
    assert runtime.store.ids() == []


@pytest.mark.parametrize(
    ("content_type", "said"),
    [(None, "no Content-Type was given"), ("text/plain", "not text/plain")],
    ids=["no content type", "text/plain"],
)
def test_a_body_not_sent_as_json_is_told_to_send_json(
    web: httpx.Client, content_type: str | None, said: str
) -> None:
    headers = {**TOKEN, **({"Content-Type": content_type} if content_type else {})}
    response = web.post("/threads", headers=headers, content=b'{"agent": "deploy", "text": "hi"}')
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("send the body as JSON with Content-Type: application/json") and said in detail


@pytest.mark.parametrize(
    ("value", "status", "keys"),
    [(b"x" * 100_000, 422, {"detail", "errors"}), (b"9" * 100_000, 400, {"detail"})],
    ids=["not json", "a number json will not read"],
)
def test_a_body_json_cannot_read_is_refused_in_the_apis_shape(
    web: httpx.Client, value: bytes, status: int, keys: set[str]
) -> None:
    headers = {**TOKEN, "Content-Type": "application/json"}
    response = web.post("/threads", headers=headers, content=b'{"agent": ' + value)
    assert response.status_code == status
    assert set(response.json()) == keys
    assert len(response.content) < 1000


MALFORMED_TIMESTAMPS = {
    "letters": "abc",
    "5000 digits": "9" * 5000,
    "float": "1700000000.5",
    "negative": "-1700000000",
    "superscript digit": "170000000\u00b2",  # str.isdigit says yes, int says no
}


def latin1(headers: dict[str, str]) -> dict[bytes, bytes]:
    """Headers as bytes on the wire, as a client that is not httpx may send them."""
    return {name.encode(): value.encode("latin-1") for name, value in headers.items()}


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS.values(), ids=MALFORMED_TIMESTAMPS.keys())
def test_a_malformed_slack_timestamp_is_refused_with_401(
    web: httpx.Client, runtime: Runtime, logs: LogWatch, timestamp: str
) -> None:
    body = json.dumps(event_callback(mention("deploy")))
    headers = {**signed_headers(body), "X-Slack-Request-Timestamp": timestamp}
    response = web.post("/slack/events", content=body.encode(), headers=latin1(headers))
    assert response.status_code == 401
    assert "X-Slack-Request-Timestamp must be Unix seconds" in response.json()["detail"]
    assert runtime.store.ids() == []


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS.values(), ids=MALFORMED_TIMESTAMPS.keys())
def test_a_malformed_webhook_timestamp_is_refused_with_401(
    web: httpx.Client, runtime: Runtime, logs: LogWatch, timestamp: str
) -> None:
    body = b'{"ref": "v1"}'
    headers = {
        "X-Outerloop-Timestamp": timestamp,
        "X-Outerloop-Delivery": "d-1",
        "X-Outerloop-Signature": webhook_signature(HOOK_SECRET.encode(), timestamp, "d-1", body),
    }
    response = web.post("/webhooks/release", content=body, headers=latin1(headers))
    assert response.status_code == 401
    assert "X-Outerloop-Timestamp must be Unix seconds" in response.json()["detail"]
    assert len(response.content) < 300
    assert runtime.store.ids() == []


def test_an_unsigned_slack_request_is_logged_as_one_line_without_its_body(
    web: httpx.Client, logs: LogWatch
) -> None:
    body = b"not json at all, " + b"z" * 900_000
    response = web.post("/slack/events", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 401
    [refusal] = [e for e in logs.events if e["event"] == "slack.rejected"]
    assert refusal["size"] == len(body)
    assert "zzz" not in str(logs.events)
    assert all("zzz" not in record.getMessage() for record in logs.caplog.get_records("call"))


def test_unsigned_20_mb_slack_requests_do_not_grow_the_log(web_process: WebProcess) -> None:
    log = web_process.log
    assert log is not None
    before = log.stat().st_size
    headers = {"Content-Type": "text/plain"}
    for _ in range(3):
        answer = upload(web_process.url, "/slack/events", 20 * 1024 * 1024, headers, chunked=False)
        assert answer.status == 413
    within = httpx.post(f"{web_process.url}/slack/events", content=b"q" * 1_000_000, headers=headers)
    assert within.status_code == 401
    wait_for(lambda: "slack.rejected" in log.read_text(), "the refusal's log line")
    assert log.stat().st_size - before < 2_000, "a few lines, not the bodies"
