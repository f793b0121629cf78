"""A local HTTP server that plays the Slack Web API, for tests.

The real ``slack_sdk.WebClient`` (and so Bolt) is pointed at ``FakeSlack.api_url``:
every call is recorded with its method, token and parameters (form, query or JSON,
as the client sent them), and answered like Slack would — posted messages get
increasing ``ts`` values, user groups list their members — unless a test scripted
a reply for that method (a 429 with Retry-After, an ``ok: false`` error).

Usage::

    with FakeSlack() as slack:
        slack.groups["S0OPS"] = ["U0BOB"]
        slack.script("chat.postMessage", rate_limited())
        ...
        [post] = slack.calls_to("chat.postMessage")
        assert post.params["thread_ts"] == "1700000000.000100"
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.local_server import LocalServer, QuietHandler

JSON = dict[str, Any]

TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"
BOT_TOKEN = "xoxb-test-token"


@dataclass(frozen=True)
class Reply:
    status: int
    body: JSON
    headers: dict[str, str] = field(default_factory=dict)


def rate_limited(retry_after: int = 1) -> Reply:
    """Slack's answer to a method called too often: 429 with Retry-After in seconds."""
    return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})


def error(code: str) -> Reply:
    """A 200 whose body says the call failed, as Slack reports most errors."""
    return Reply(200, {"ok": False, "error": code})


@dataclass(frozen=True)
class Call:
    method: str
    token: str | None
    params: JSON
    """Form, query and JSON parameters together; JSON-encoded form values (blocks) decoded."""
    status: int = 200
    reply: JSON = field(default_factory=dict)


class FakeSlack(LocalServer):
    """``/api/{method}`` on 127.0.0.1, answering like Slack from the calls it has seen."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.groups: dict[str, list[str]] = {}
        """User group id -> member user ids, for ``usergroups.users.list``."""
        self.socket_url: str | None = None
        """What ``apps.connections.open`` answers (a local Socket Mode endpoint)."""
        self._scripted: dict[str, deque[Reply]] = defaultdict(deque)
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__(partial(_Handler, self), "fake-slack")

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/"

    def script(self, method: str, *replies: Reply) -> None:
        """Answer the next calls to ``method`` with ``replies``, in order, before answering normally."""
        with self._lock:
            self._scripted[method].extend(replies)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def posts(self) -> list[JSON]:
        """Every message posted so far: the ``chat.postMessage`` parameters and the ``ts`` it got."""
        return [
            {**call.params, "ts": call.reply["ts"]}
            for call in self.calls_to("chat.postMessage")
            if call.reply.get("ok")
        ]

    def _answer(self, method: str, token: str | None, params: JSON) -> Reply:
        with self._lock:
            scripted = self._scripted[method].popleft() if self._scripted[method] else None
        answer = ANSWERS.get(method)
        if scripted is not None:
            reply = scripted
        elif answer is None:
            reply = error("unknown_method")
        else:
            reply = Reply(200, {"ok": True, **answer(self, params)})
        with self._lock:
            self.calls.append(Call(method, token, params, reply.status, reply.body))
        return reply

    def next_ts(self) -> str:
        with self._lock:
            return f"1700000000.{next(self._ts):06d}"


def _posted(slack: FakeSlack, params: JSON) -> JSON:
    ts = slack.next_ts()
    message = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "team": TEAM, "ts": ts}
    message.update({k: params[k] for k in ("text", "blocks", "thread_ts") if k in params})
    return {"channel": params.get("channel"), "ts": ts, "message": message}


ANSWERS: dict[str, Callable[[FakeSlack, JSON], JSON]] = {
    "auth.test": lambda slack, _: {
        "url": "https://test.slack.com/",
        "team": "Test",
        "user": "outerloop",
        "team_id": TEAM,
        "user_id": BOT_USER,
        "bot_id": BOT_ID,
    },
    "chat.postMessage": _posted,
    "chat.update": lambda slack, p: {"channel": p.get("channel"), "ts": p.get("ts"), "text": p.get("text")},
    "chat.postEphemeral": lambda slack, _: {"message_ts": slack.next_ts()},
    "reactions.add": lambda slack, _: {},
    "reactions.remove": lambda slack, _: {},
    "views.open": lambda slack, p: {"view": {"id": "V0VIEW", **(p.get("view") or {})}},
    "usergroups.users.list": lambda slack, p: {"users": slack.groups.get(str(p.get("usergroup")), [])},
    "apps.connections.open": lambda slack, _: {"url": slack.socket_url},
}


def _decoded(value: str) -> Any:
    """Form values the client JSON-encoded (blocks, views), decoded; others as sent."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _Handler(QuietHandler):
    def __init__(self, slack: FakeSlack, *args: Any, **kwargs: Any) -> None:
        self.slack = slack
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self.rfile.read(int(self.headers.get("content-length", "0"))))

    def _handle(self, raw: bytes) -> None:
        url = urlsplit(self.path)
        params: JSON = {k: _decoded(v) for k, v in parse_qsl(url.query)}
        if "json" in self.headers.get("content-type", ""):
            params.update(json.loads(raw or b"{}"))
        else:
            params.update({k: _decoded(v) for k, v in parse_qsl(raw.decode())})
        auth = self.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth else params.get("token")
        reply = self.slack._answer(url.path.removeprefix("/api/"), token, params)
        payload = json.dumps(reply.body).encode()
        self.reply(reply.status, payload, "application/json; charset=utf-8", reply.headers)
