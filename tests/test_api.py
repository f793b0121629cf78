"""The threads API over real HTTP (uvicorn on loopback), with real Redis and RQ workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.api_tokens import ApiTokens
from bot.web.app import create_app
from channels.request_text import BLANK_REQUEST
from tests.services import Workers, serve, wait_for

TOKEN = {"Authorization": "Bearer test-token"}


@pytest.fixture
def api(runtime: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def status_of(api: httpx.Client, thread_id: str, wanted: str) -> dict[str, Any] | None:
    body: dict[str, Any] = api.get(f"/threads/{thread_id}", headers=TOKEN).json()
    return body if body["status"] == wanted else None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdC10b2tlbg=="}],
    ids=["no token", "wrong token", "wrong scheme"],
)
def test_the_threads_api_refuses_requests_without_the_right_token(
    api: httpx.Client, headers: dict[str, str]
) -> None:
    for method, path in [("GET", "/threads"), ("POST", "/threads"), ("GET", "/threads/x")]:
        response = api.request(method, path, headers=headers, json={"agent": "deploy", "text": "hi"})
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.get("/threads", headers=TOKEN).status_code == 200


def test_the_api_is_disabled_when_no_token_is_configured(runtime: Runtime) -> None:
    runtime.settings.api_token = None
    with serve(create_app(runtime)) as url:
        response = httpx.get(f"{url}/threads", headers=TOKEN)
    assert response.status_code == 401
    assert "OUTERLOOP_API_TOKEN" in response.json()["detail"]


def test_health_and_openapi_need_no_token(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/threads", "/threads/{thread_id}/responses", "/threads/{thread_id}/fork"} <= set(paths)


def test_launch_approve_done_end_to_end_through_rq_workers(
    api: httpx.Client, runtime: Runtime, workers: Workers, deploy_log: Path
) -> None:
    workers.start(1)
    created = api.post(
        "/threads", headers=TOKEN, json={"agent": "deploy", "text": "ship the latest to staging"}
    )
    assert created.status_code == 201
    thread_id = created.json()["id"]
    waiting = wait_for(lambda: status_of(api, thread_id, "awaiting_human"), "the approval request")
    request = waiting["pending"]
    assert request["kind"] == "approval" and request["call"]["arguments"]["tag"] == "v1.1.0"
    assert not deploy_log.exists(), "nothing deployed before approval"

    # The shared token started the thread, so it may not approve it: a person does.
    _, secret = ApiTokens(runtime.connection).create("alice@example.com")
    answer = {"request_id": request["request_id"], "approved": True}
    alice = {"Authorization": f"Bearer {secret}"}
    assert api.post(f"/threads/{thread_id}/responses", headers=alice, json=answer).status_code == 202
    done = wait_for(lambda: status_of(api, thread_id, "done"), "the deploy to finish")
    assert deploy_log.read_text().split() == ["v1.1.0", "staging"]
    acted = [e["type"] for e in done["events"] if not e["type"].startswith("model_")]
    assert acted[-3:] == ["tool_call", "tool_result", "done"]
    listed = api.get("/threads", params={"status": "done"}, headers=TOKEN).json()
    assert [t["id"] for t in listed] == [thread_id]


def test_a_second_answer_is_refused_and_says_who_answered(api: httpx.Client, runtime: Runtime) -> None:
    from tests.answering import advance_and_answer

    thread_id = api.post("/threads", headers=TOKEN, json={"agent": "deploy", "text": "ship"}).json()["id"]
    pending = advance_and_answer(runtime, thread_id)
    assert pending is not None and pending.pending is not None
    answer = {
        "request_id": pending.pending.request_id,
        "approved": False,
        "comment": "freeze",
    }
    assert api.post(f"/threads/{thread_id}/responses", headers=TOKEN, json=answer).status_code == 202
    again = api.post(f"/threads/{thread_id}/responses", headers=TOKEN, json={**answer, "approved": True})
    assert again.status_code == 409
    assert "already answered by api" in again.json()["detail"]


def test_only_approvers_may_answer(settings: Settings) -> None:
    from tests.answering import advance_and_answer

    settings.approvers = ("alice@example.com",)
    runtime = Runtime.from_settings(settings)
    tokens = ApiTokens(runtime.connection)
    alice = {"Authorization": f"Bearer {tokens.create('alice@example.com')[1]}"}
    mallory = {"Authorization": f"Bearer {tokens.create('mallory@example.com')[1]}"}
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, headers=TOKEN) as api:
        thread_id = api.post("/threads", json={"agent": "deploy", "text": "ship"}).json()["id"]
        thread = advance_and_answer(runtime, thread_id)
        assert thread is not None and thread.pending is not None
        answer = {"request_id": thread.pending.request_id, "approved": True}
        refused = api.post(f"/threads/{thread_id}/responses", json=answer, headers=mallory)
        assert refused.status_code == 403
        assert "mallory@example.com may not answer" in refused.json()["detail"]
        assert api.get(f"/threads/{thread_id}").json()["status"] == "awaiting_human", "nothing changed"

        assert api.post(f"/threads/{thread_id}/responses", json=answer, headers=alice).status_code == 202
        late = api.post(f"/threads/{thread_id}/responses", json=answer, headers=mallory)
        assert late.status_code == 403
        assert "alice" not in late.json()["detail"].split("approvers:")[0], (
            "strangers don't learn who answered"
        )


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("GET", "/threads/nope", None, 404, "no thread with id 'nope'"),
        ("POST", "/threads", {"agent": "nobody", "text": "hi"}, 422, "no agent named 'nobody'"),
        ("POST", "/threads", {"agent": "deploy", "text": ""}, 422, BLANK_REQUEST),
        ("POST", "/threads", {"agent": "deploy", "text": " \n\t "}, 422, BLANK_REQUEST),
        ("POST", "/threads/nope/pause", None, 404, "no thread with id 'nope'"),
        ("GET", "/threads?status=sleeping", None, 422, "Input should be"),
    ],
)
def test_bad_requests_get_a_clear_error(
    api: httpx.Client, method: str, path: str, body: dict[str, str] | None, status: int, detail: str
) -> None:
    response = api.request(method, path, headers=TOKEN, json=body)
    assert response.status_code == status
    assert detail in response.text


def test_pause_resume_cancel_and_fork_over_http(api: httpx.Client, runtime: Runtime) -> None:
    thread_id = api.post("/threads", headers=TOKEN, json={"agent": "deploy", "text": "ship"}).json()["id"]
    assert api.post(f"/threads/{thread_id}/pause", headers=TOKEN).json()["status"] == "paused"
    assert api.post(f"/threads/{thread_id}/pause", headers=TOKEN).status_code == 409
    assert api.post(f"/threads/{thread_id}/resume", headers=TOKEN).json()["status"] == "running"
    fork = api.post(f"/threads/{thread_id}/fork", headers=TOKEN, json={"at": 1})
    assert fork.status_code == 201 and fork.json()["id"] != thread_id
    cancelled = api.post(f"/threads/{thread_id}/cancel", headers=TOKEN, json={"reason": "obsolete"})
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"/threads/{thread_id}/resume", headers=TOKEN).status_code == 409
    assert api.post(f"/threads/{thread_id}/fork", headers=TOKEN, json={"at": 99}).status_code == 422


def test_threads_are_listed_a_page_at_a_time_following_the_link(api: httpx.Client, runtime: Runtime) -> None:
    launched = [runtime.launch("notes", f"note {n}").thread.id for n in range(5)]
    seen: list[str] = []
    url: str | None = "/threads?agent=notes&limit=2"
    while url is not None:
        page = api.get(url, headers=TOKEN)
        assert page.status_code == 200 and len(page.json()) <= 2
        seen += [summary["id"] for summary in page.json()]
        url = page.links["next"]["url"] if "next" in page.links else None
    assert seen == list(reversed(launched))
    refused = api.get("/threads", params={"cursor": "not-a-cursor"}, headers=TOKEN)
    assert refused.status_code == 422 and "cursor" in refused.json()["detail"]
