"""Live updates: a page's event stream says ``changed`` when what it shows moves."""

from __future__ import annotations

import httpx

from bot.runtime import Runtime
from tests.console.conftest import waiting_deploy


def test_a_thread_stream_says_changed_when_the_thread_moves(alice: httpx.Client, runtime: Runtime) -> None:
    thread_id, request_id = waiting_deploy(runtime)
    with alice.stream("GET", f"/console/live/threads/{thread_id}") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event: ")) == "event: ready"
        runtime.respond(thread_id, request_id, "alice@example.com", approved=True)
        assert next(line for line in lines if line.startswith("event: ")) == "event: changed"


def test_the_inbox_stream_says_changed_when_a_request_arrives(alice: httpx.Client, runtime: Runtime) -> None:
    with alice.stream("GET", "/console/live/inbox") as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event: ")) == "event: ready"
        waiting_deploy(runtime)
        assert next(line for line in lines if line.startswith("event: ")) == "event: changed"


def test_streams_need_a_session_and_a_visible_thread(anonymous: httpx.Client, alice: httpx.Client) -> None:
    assert anonymous.get("/console/live/inbox").status_code == 303
    assert alice.get("/console/live/threads/nope").status_code == 404
