"""Who answers on the HTTP API: per-person tokens prove a person, the shared token acts as ``api``
and names nobody else unless told to; ``/healthz`` tells strangers only ok or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.api_tokens import ApiTokens
from bot.web.app import create_app
from tests.answering import advance_and_answer
from tests.services import free_port, serve
from tests.test_cli import outerloop

SHARED = {"Authorization": "Bearer test-token"}
ALICE = "alice@example.com"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    settings.approvers = (ALICE, "U0BOSS")
    return Runtime.from_settings(settings)


@pytest.fixture
def api(runtime: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def waiting_thread(api: httpx.Client, runtime: Runtime, headers: dict[str, str] = SHARED) -> tuple[str, str]:
    """A deploy thread waiting for approval: its id and the pending request's id."""
    thread_id = api.post("/threads", headers=headers, json={"agent": "deploy", "text": "ship"}).json()["id"]
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    return thread_id, thread.pending.request_id


def last_event(api: httpx.Client, thread_id: str, kind: str) -> dict[str, Any]:
    events = api.get(f"/threads/{thread_id}", headers=SHARED).json()["events"]
    found: dict[str, Any] = next(event for event in reversed(events) if event["type"] == kind)
    return found


def test_tokens_are_created_listed_and_revoked_from_the_cli(
    env: dict[str, str], api: httpx.Client, runtime: Runtime
) -> None:
    secret = outerloop("tokens", "create", "--for", "U0123ABCD", "--note", "laptop", env=env).strip()
    assert secret.startswith("olt_") and len(secret) > 40
    listed = outerloop("tokens", env=env)
    assert "U0123ABCD" in listed and "laptop" in listed and secret not in listed
    token_id = listed.split()[0]
    assert outerloop("tokens", "list", env=env) == listed
    stored = [runtime.connection.dump(name) or b"" for name in runtime.connection.scan_iter("ol:apitoken*")]
    assert stored and not any(secret.encode() in raw for raw in stored), "only a digest is kept"
    assert api.get("/threads", headers=bearer(secret)).status_code == 200

    assert outerloop("tokens", "revoke", token_id, env=env).strip() == f"revoked {token_id} (U0123ABCD)"
    assert "U0123ABCD" not in outerloop("tokens", env=env)
    refused = api.get("/threads", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.json() == {"detail": "unknown or revoked bearer token"}


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("create", "--for", "bob"), "'bob' is not a person: give a Slack user id (U0123ABCD) or an email"),
        (("create", "--for", "a b@example.com"), "is not a person"),
        (("revoke", "0123abcd"), "no API token with id '0123abcd'; `outerloop tokens` lists them"),
    ],
)
def test_token_commands_refuse_bad_input_clearly(
    env: dict[str, str], args: tuple[str, ...], error: str
) -> None:
    said = outerloop("tokens", *args, env=env, check=False)
    assert error in said and "Traceback" not in said


def test_a_person_token_answers_as_that_person(api: httpx.Client, runtime: Runtime) -> None:
    token, secret = ApiTokens(runtime.connection).create(ALICE)
    _, carols = ApiTokens(runtime.connection).create("carol@example.com")
    thread_id, request_id = waiting_thread(api, runtime, headers=bearer(carols))
    trigger = last_event(api, thread_id, "trigger")
    assert trigger["origin"]["sender"] == "carol@example.com", "a launch is recorded as its caller's"

    as_boss = api.post(
        f"/threads/{thread_id}/responses",
        headers=bearer(secret),
        json={"request_id": request_id, "approved": True, "responder": "U0BOSS"},
    )
    assert as_boss.status_code == 403
    assert as_boss.json()["detail"] == f"this token belongs to {ALICE} and may not act as 'U0BOSS'"

    answer = {"request_id": request_id, "approved": True}
    assert api.post(f"/threads/{thread_id}/responses", headers=bearer(secret), json=answer).status_code == 202
    response = last_event(api, thread_id, "human_response")
    assert (response["responder"], response["credential"]) == (ALICE, f"token:{token.id}")
    assert secret not in str(response)


def test_the_shared_token_names_a_responder_only_when_trusted(api: httpx.Client, runtime: Runtime) -> None:
    thread_id, request_id = waiting_thread(api, runtime)
    as_alice = {"request_id": request_id, "approved": True, "responder": ALICE}
    refused = api.post(f"/threads/{thread_id}/responses", headers=SHARED, json=as_alice)
    assert refused.status_code == 403
    assert "OUTERLOOP_API_TRUSTED_RESPONDER=true" in refused.json()["detail"]
    as_itself = api.post(
        f"/threads/{thread_id}/responses", headers=SHARED, json={**as_alice, "responder": None}
    )
    assert as_itself.status_code == 403, "the shared token is 'api', which is no approver"
    assert "api may not answer" in as_itself.json()["detail"]

    runtime.settings.api_trusted_responder = True
    assert api.post(f"/threads/{thread_id}/responses", headers=SHARED, json=as_alice).status_code == 202
    response = last_event(api, thread_id, "human_response")
    assert (response["responder"], response["credential"]) == (ALICE, "api")


def test_pause_resume_and_cancel_are_recorded_as_the_caller(api: httpx.Client, runtime: Runtime) -> None:
    _, secret = ApiTokens(runtime.connection).create("U0BOSS")
    thread_id = api.post("/threads", headers=SHARED, json={"agent": "deploy", "text": "ship"}).json()["id"]
    assert api.post(f"/threads/{thread_id}/pause", headers=bearer(secret)).status_code == 202
    assert last_event(api, thread_id, "paused")["by"] == "U0BOSS"
    named = api.post(f"/threads/{thread_id}/resume", headers=SHARED, json={"by": "U0BOSS"})
    assert named.status_code == 403 and "may not name 'U0BOSS'" in named.json()["detail"]
    assert api.post(f"/threads/{thread_id}/resume", headers=SHARED).status_code == 202
    assert last_event(api, thread_id, "resumed")["by"] == "api"
    cancel = api.post(f"/threads/{thread_id}/cancel", headers=bearer(secret), json={"by": "U0BOSS"})
    assert cancel.status_code == 202 and last_event(api, thread_id, "cancelled")["by"] == "U0BOSS"


def test_healthz_gives_details_only_to_an_authenticated_caller(api: httpx.Client, runtime: Runtime) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    _, secret = ApiTokens(runtime.connection).create(ALICE)
    for headers in (SHARED, bearer(secret)):
        details = api.get("/healthz", headers=headers).json()
        assert details["status"] == "ok" and details["outerloop"]
        assert details["redis"]["reachable"] is True and details["redis"]["version"]
    assert api.get("/healthz", headers=bearer("olt_wrong")).status_code == 401


def test_healthz_tells_strangers_nothing_about_an_unreachable_redis(settings: Settings) -> None:
    settings.redis_url = f"redis://:hunter2-redis-password@127.0.0.1:{free_port()}/0"
    runtime = Runtime.from_settings(settings)
    with serve(create_app(runtime)) as url:
        public = httpx.get(f"{url}/healthz")
        assert (public.status_code, public.json()) == (503, {"status": "unavailable"})
        private = httpx.get(f"{url}/healthz", headers=SHARED)
    assert private.status_code == 503
    assert private.json()["redis"]["reachable"] is False and "Connection refused" in private.text
    assert "hunter2" not in private.text
