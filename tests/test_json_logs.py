"""``OUTERLOOP_LOG_FORMAT=json``: every line a JSON object, naming the thread, agent and event type."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.events import Origin
from agent.thread import Status
from bot.runtime import Runtime
from bot.settings import Settings
from tests.hostile.processes import WebProcess
from tests.services import Workers, wait_for

REQUEST = "deploy v1.0.0 to staging, codeword zebra"
"""The mail's text: what people wrote stays out of the logs."""


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def test_json_logs_name_the_thread_agent_and_event_type_wherever_a_thread_is_worked_on(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    json_env = {**env, "OUTERLOOP_LOG_FORMAT": "json", "SMTP_MAILDIR": str(tmp_path / "mail")}
    for name, value in json_env.items():
        monkeypatch.setenv(name, value)
    rt = Runtime.from_settings(Settings())
    mail = Origin(channel="email", sender="me@localhost", address={"message_id": "<1@localhost>"})
    thread_id = rt.launch("deploy", REQUEST, origin=mail).thread.id  # its messages are mailed: deliveries
    web = WebProcess(json_env, tmp_path / "web.log")
    workers = Workers(json_env, tmp_path / "workers.log")  # a worker and a caller
    try:
        web.start()
        workers.start(1)
        pending = wait_for(lambda: rt.load(thread_id).pending, "the approval request", 60)
        answer = httpx.post(
            f"{web.url}/threads/{thread_id}/responses",
            json={"request_id": pending.request_id, "approved": True},
            headers={"Authorization": "Bearer test-token"},
        )
        assert answer.status_code == 202, answer.text
        assert httpx.get(f"{web.url}/threads/nosuchthread", headers={"Authorization": "Bearer x"}).is_error
        wait_for(lambda: rt.load(thread_id).status is Status.DONE, "the deploy", 60)
        wait_for(lambda: not rt.store.owed(time.time() + 3600), "every delivery", 60)
    finally:
        workers.stop_all()
        web.stop_all()

    lines = json_lines(tmp_path / "workers.log") + json_lines(tmp_path / "web.log")
    about = [line for line in lines if line.get("thread_id") == thread_id]
    events = {line["event"] for line in about}
    assert {"event.recorded", "delivery.done", "event.submitted"} <= events, events
    for line in about:
        assert line.get("agent") == "deploy", line
    for line in lines:
        if line["event"].startswith(("event.", "delivery.done")):
            assert line.get("event_type") and line.get("thread_id") == thread_id, line
        assert "process" in line and "timestamp" in line, line
    text = "\n".join(json.dumps(line) for line in lines)
    assert "zebra" not in text and "test-token" not in text
