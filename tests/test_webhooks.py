"""Webhooks over real HTTP: signed deliveries start threads, replays start nothing, and every
unverified or unusable request is refused with its reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from agent.definition import UnknownAgent
from agent.events import Origin, Trigger
from bot.model import queue as model_queue
from bot.runtime import Runtime
from bot.web.app import create_app
from bot.work.scheduler import Scheduler
from channels.config import ConfigError
from channels.cron import load_schedules
from channels.webhook import load_webhooks, signature
from tests.services import REPO, serve

SECRET = "s3cret-for-the-release-hook"
OPS_SECRET = "another-long-enough-secret"
HOOKS = f"""
[webhooks.release]
agent = "notes"
prompt = "Release ${{ref}} requested by ${{pusher.name}} (first commit ${{commits.0.id}})"
secret_env = "RELEASE_HOOK_SECRET"

[webhooks.ops]
agent = "notes"
prompt = "An alert fired"
secret = "{OPS_SECRET}"
report_to = "slack:C0OPS"
"""
PAYLOAD = {"ref": "v1.2.0", "pusher": {"name": "alice"}, "commits": [{"id": "abc123"}]}


@pytest.fixture
def hooks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RELEASE_HOOK_SECRET", SECRET)
    path = tmp_path / "webhooks.toml"
    path.write_text(HOOKS)
    return path


@pytest.fixture
def web(runtime: Runtime, hooks_file: Path) -> Iterator[httpx.Client]:
    runtime.settings.webhooks_file = hooks_file
    with serve(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def signed(
    body: bytes, delivery: str = "d-1", secret: str = SECRET, at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    return {
        "X-Outerloop-Timestamp": timestamp,
        "X-Outerloop-Delivery": delivery,
        "X-Outerloop-Signature": signature(secret.encode(), timestamp, delivery, body),
        "Content-Type": "application/json",
    }


BODY = json.dumps(PAYLOAD).encode()


def first_trigger(runtime: Runtime, thread_id: str) -> Trigger:
    trigger = runtime.load(thread_id).trigger
    assert trigger is not None
    return trigger


def test_a_signed_delivery_starts_a_thread_with_the_payload_in_its_prompt(
    web: httpx.Client, runtime: Runtime
) -> None:
    response = web.post("/webhooks/release", content=BODY, headers=signed(BODY))
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] == "running" and accepted["duplicate"] is False
    trigger = first_trigger(runtime, accepted["id"])
    assert trigger.text == "Release v1.2.0 requested by alice (first commit abc123)"
    assert trigger.origin == Origin(channel="webhook", sender="webhook:release", address={"delivery": "d-1"})
    assert trigger.key == "webhook:release:d-1"
    assert model_queue.waiting(runtime.connection) == 1, "the thread asks the model (a caller answers)"


def test_a_webhook_with_report_to_reports_through_that_channel(web: httpx.Client, runtime: Runtime) -> None:
    response = web.post("/webhooks/ops", content=b"{}", headers=signed(b"{}", secret=OPS_SECRET))
    assert response.status_code == 202, response.text
    trigger = first_trigger(runtime, response.json()["id"])
    assert trigger.origin == Origin(channel="slack", sender="webhook:ops", address={"channel": "C0OPS"})
    assert trigger.text == "An alert fired"


def test_a_replayed_delivery_has_one_effect_and_answers_with_the_same_thread(
    web: httpx.Client, runtime: Runtime
) -> None:
    headers = signed(BODY)
    first = web.post("/webhooks/release", content=BODY, headers=headers).json()
    with ThreadPoolExecutor(max_workers=4) as pool:
        replays = list(
            pool.map(lambda _: web.post("/webhooks/release", content=BODY, headers=headers), range(4))
        )
    assert {r.status_code for r in replays} == {202}
    assert {r.json()["id"] for r in replays} == {first["id"]}
    assert all(r.json()["duplicate"] for r in replays)
    assert runtime.store.ids() == [first["id"]]
    assert [e.type for e in runtime.load(first["id"]).events] == ["trigger", "model_requested"]
    assert model_queue.waiting(runtime.connection) == 1

    again = web.post("/webhooks/release", content=BODY, headers=signed(BODY, delivery="d-2")).json()
    assert again["id"] != first["id"] and not again["duplicate"], "a new delivery id is a new delivery"


def _without(header: str) -> dict[str, str]:
    return {k: v for k, v in signed(BODY).items() if k != header}


REFUSALS: list[tuple[str, Callable[[], dict[str, str]], str]] = [
    (
        "wrong secret",
        lambda: signed(BODY, secret="not-the-secret-at-all"),
        "X-Outerloop-Signature does not match",
    ),
    ("no signature", lambda: _without("X-Outerloop-Signature"), "missing X-Outerloop-Signature header"),
    ("no timestamp", lambda: _without("X-Outerloop-Timestamp"), "missing X-Outerloop-Timestamp header"),
    ("no delivery id", lambda: _without("X-Outerloop-Delivery"), "missing X-Outerloop-Delivery header"),
    ("stale", lambda: signed(BODY, at=time.time() - 3600), r"X-Outerloop-Timestamp is 360\d s away"),
    ("from the future", lambda: signed(BODY, at=time.time() + 3600), r"at most 300 s\): a replayed request"),
    ("not a number", lambda: {**signed(BODY), "X-Outerloop-Timestamp": "yesterday"}, "must be Unix seconds"),
    ("other delivery id", lambda: {**signed(BODY), "X-Outerloop-Delivery": "d-9"}, "does not match"),
]
"""Headers are made when the test runs: a signature made at import could be stale by then."""


@pytest.mark.parametrize(("headers", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_unverified_deliveries_are_refused_with_a_reason(
    web: httpx.Client, runtime: Runtime, headers: Callable[[], dict[str, str]], reason: str
) -> None:
    response = web.post("/webhooks/release", content=BODY, headers=headers())
    assert response.status_code == 401
    assert re.search(reason, response.json()["detail"])
    assert runtime.store.ids() == []


def test_a_tampered_body_is_refused(web: httpx.Client, runtime: Runtime) -> None:
    tampered = BODY.replace(b"v1.2.0", b"v6.6.6")
    assert web.post("/webhooks/release", content=tampered, headers=signed(BODY)).status_code == 401
    assert runtime.store.ids() == []


def test_an_unknown_webhook_is_not_found(web: httpx.Client) -> None:
    response = web.post("/webhooks/nope", content=BODY, headers=signed(BODY))
    assert response.status_code == 404
    assert response.json()["detail"] == "no webhook named 'nope'"


@pytest.mark.parametrize(
    ("body", "delivery", "reason"),
    [
        (b"not json", "d-1", "the body is not JSON"),
        (json.dumps({"ref": "v1"}).encode(), "d-1", "the payload has no field 'pusher.name'"),
        (BODY, "d 1", "X-Outerloop-Delivery must be 1 to 200 printable characters"),
    ],
    ids=["not json", "missing field", "bad delivery id"],
)
def test_verified_but_unusable_deliveries_are_refused_with_a_reason(
    web: httpx.Client, runtime: Runtime, body: bytes, delivery: str, reason: str
) -> None:
    response = web.post("/webhooks/release", content=body, headers=signed(body, delivery=delivery))
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    assert runtime.store.ids() == []


def test_a_body_over_the_limit_is_refused(web: httpx.Client, runtime: Runtime) -> None:
    body = b"x" * 1_000_001
    response = web.post("/webhooks/release", content=body, headers=signed(body))
    assert response.status_code == 413
    assert runtime.store.ids() == []


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)


def test_the_readme_config_examples_load(runtime: Runtime, tmp_path: Path) -> None:
    schedules, hooks = (tmp_path / "schedules.toml", tmp_path / "webhooks.toml")
    schedules.write_text(next(b for b in readme_blocks("toml") if "[schedules." in b))
    hooks.write_text(next(b for b in readme_blocks("toml") if "[webhooks." in b))
    assert [s.name for s in Scheduler(runtime, load_schedules(schedules)).schedules] == ["nightly-staging"]
    assert list(load_webhooks(hooks, {"RELEASE_HOOK_SECRET": SECRET})) == ["release"]


def test_the_readme_signing_example_works(web: httpx.Client, runtime: Runtime) -> None:
    readme = (REPO / "README.md").read_text()
    example = next(
        block for block in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL) if "openssl dgst" in block
    )
    script = example.replace("http://localhost:8000", str(web.base_url).rstrip("/"))
    completed = subprocess.run(
        ["bash", "-euc", script],
        env={**os.environ, "RELEASE_HOOK_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    accepted = json.loads(completed.stdout)
    assert accepted["duplicate"] is False
    assert first_trigger(runtime, accepted["id"]).text.startswith("Release v1.2.0 requested by alice")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('secret_env = "NOT_SET_ANYWHERE"', "secret_env: NOT_SET_ANYWHERE is not set"),
        ('secret = "short"', "the secret must be at least 16 characters"),
        ('secret = "0123456789abcdef"\nsecret_env = "RELEASE_HOOK_SECRET"', "exactly one of secret_env"),
        ("", "exactly one of secret_env"),
        ('secret = "0123456789abcdef"\nreport_to = "slack"', "'slack' is not 'slack:CHANNEL_ID'"),
    ],
)
def test_a_wrong_webhooks_file_is_a_clear_error(hooks_file: Path, entry: str, message: str) -> None:
    hooks_file.write_text(f'[webhooks.release]\nagent = "notes"\nprompt = "p"\n{entry}\n')
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_webhooks(hooks_file, os.environ)


def test_a_webhook_for_an_unknown_agent_stops_the_web_app_at_start(
    runtime: Runtime, hooks_file: Path
) -> None:
    hooks_file.write_text(f'[webhooks.x]\nagent = "nobody"\nprompt = "p"\nsecret = "{SECRET}"\n')
    runtime.settings.webhooks_file = hooks_file
    with pytest.raises(UnknownAgent, match="no agent named 'nobody'"):
        create_app(runtime)
