"""Driving threads through the HTTP API as an operator would: read them, and approve what they ask.

The operator trusts what a thread tells them: when it asks to approve a deploy again
because the first "was interrupted", they approve, as the issue's operator did. So a
false "interrupted" shows up the way it hurts, as a deploy that runs twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from tests.services import wait_for

TOKEN = {"Authorization": "Bearer test-token"}
SETTLED = frozenset({"done", "failed", "cancelled"})
"""Statuses in which a thread waits for nothing (``done`` until someone writes again)."""
JSON = dict[str, Any]


def fetch(api: httpx.Client, thread_id: str) -> JSON | None:
    """The thread as ``GET /threads/{id}`` shows it; None while the API cannot answer (Redis down)."""
    try:
        response = api.get(f"/threads/{thread_id}", headers=TOKEN)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def in_status(api: httpx.Client, thread_id: str, status: str) -> JSON | None:
    body = fetch(api, thread_id)
    return body if body is not None and body["status"] == status else None


def launch(api: httpx.Client, text: str = "ship the latest to staging", agent: str = "deploy") -> str:
    response = api.post("/threads", headers=TOKEN, json={"agent": agent, "text": text})
    assert response.status_code == 201, response.text
    thread_id: str = response.json()["id"]
    return thread_id


def answer(
    api: httpx.Client, thread_id: str, request_id: str, responder: str, approved: bool
) -> httpx.Response:
    body = {"request_id": request_id, "approved": approved, "responder": responder}
    if not approved:
        body["comment"] = f"{responder} says no"
    return api.post(f"/threads/{thread_id}/responses", headers=TOKEN, json=body)


def awaiting_approval(api: httpx.Client, thread_id: str, timeout: float = 30.0) -> JSON:
    """Wait until the thread asks for an approval; returns its pending request."""
    body = wait_for(lambda: in_status(api, thread_id, "awaiting_human"), "the approval request", timeout)
    pending: JSON = body["pending"]
    assert pending["kind"] == "approval", pending
    return pending


class Approver:
    """Approves every approval request of the threads it watches, up to ``limit`` per thread."""

    def __init__(self, api: httpx.Client, responder: str = "alice", limit: int = 3) -> None:
        self.api = api
        self.responder = responder
        self.limit = limit
        self.accepted: dict[str, list[str]] = {}
        """Per thread, the requests whose approval the API accepted (202), in order."""
        self.last: dict[str, JSON] = {}
        """Each thread as last seen."""

    def watch(self, thread_ids: Iterable[str]) -> None:
        for thread_id in thread_ids:
            self.accepted.setdefault(thread_id, [])

    def sweep(self) -> bool:
        """Look at every unsettled thread once and approve what waits; True when all are settled."""
        for thread_id in self.accepted:
            if self.settled(thread_id):
                continue
            body = fetch(self.api, thread_id)
            if body is None:
                continue
            self.last[thread_id] = body
            pending = body["pending"]
            if body["status"] == "awaiting_human" and self._will_approve(thread_id, pending):
                reply = answer(self.api, thread_id, pending["request_id"], self.responder, approved=True)
                if reply.status_code == 202:
                    self.accepted[thread_id].append(pending["request_id"])
        return all(self.settled(thread_id) for thread_id in self.accepted)

    def settle(self, timeout: float) -> bool:
        """Sweep until every thread is settled or ``timeout`` seconds pass; True if all settled."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sweep():
                return True
            time.sleep(0.1)
        return False

    def settled(self, thread_id: str) -> bool:
        """Done (or failed, cancelled), or waiting on a request this operator will not answer."""
        body = self.last.get(thread_id)
        if body is None:
            return False
        if body["status"] in SETTLED:
            return True
        pending = body["pending"]
        if body["status"] != "awaiting_human" or pending is None:
            return False
        return pending["request_id"] not in self.accepted[thread_id] and not self._will_approve(
            thread_id, pending
        )

    def _will_approve(self, thread_id: str, pending: JSON | None) -> bool:
        """An approval request not answered yet, while this thread has approvals left."""
        if pending is None or pending["kind"] != "approval":
            return False
        answered = self.accepted[thread_id]
        return pending["request_id"] not in answered and len(answered) < self.limit
