"""A local HTTP server that plays the Anthropic Messages API, for tests.

The real ``anthropic.Anthropic`` client is pointed at ``FakeAnthropic.base_url``, so
tests exercise the SDK's own request building, retries and error mapping instead of
a mock. The server records every request and answers from a queue of scripted
replies, in order.

Usage, typically from a pytest fixture::

    with FakeAnthropic() as fake:
        fake.script(tool_use_reply("look_up", {"name": "api"}))
        model = AnthropicModel(api_key="test-key", base_url=fake.base_url)
        ...
        assert fake.requests[0].body["model"] == model.model
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tests.local_server import LocalServer, QuietHandler

JSON = dict[str, Any]

HOLD_LIMIT = 60.0
"""Seconds a held request waits at most, so a test that never lets go fails instead of hanging."""

RETRY_NOW = {"retry-after-ms": "1"}
"""Headers that make the client retry after 1 ms instead of its half-second backoff.

The SDK honours ``retry-after-ms`` (then ``retry-after``) only when it is above zero.
"""


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP answer."""

    status: int
    body: JSON | str
    """JSON, or text sent as is (to play a proxy or a wrong server)."""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    """Seconds the server takes before it answers, as a model thinking would."""


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    """Header names are lower-cased, as HTTP treats them case-insensitively."""
    body: JSON


def tool_use_block(name: str, arguments: JSON, block_id: str = "toolu_01") -> JSON:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


def text_block(text: str) -> JSON:
    return {"type": "text", "text": text}


DEFAULT_USAGE: JSON = {"input_tokens": 100, "output_tokens": 20}


def message(
    *content: JSON, stop_reason: str = "tool_use", model: str = "claude-test", usage: JSON | None = None
) -> JSON:
    """A successful Messages API response body holding ``content``; ``usage`` as the API counts
    it (``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``)."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or DEFAULT_USAGE,
    }


def tool_use_reply(
    name: str,
    arguments: JSON,
    block_id: str = "toolu_01",
    model: str = "claude-test",
    usage: JSON | None = None,
) -> Reply:
    """A 200 whose message is a single tool call."""
    return Reply(200, message(tool_use_block(name, arguments, block_id), model=model, usage=usage))


def text_reply(text: str) -> Reply:
    """A 200 whose message is text only, with no tool call."""
    return Reply(200, message(text_block(text), stop_reason="end_turn"))


def error_body(error_type: str, text: str) -> JSON:
    return {"type": "error", "error": {"type": error_type, "message": text}}


def error_reply(status: int, error_type: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, error_body(error_type, text), headers or {})


def overloaded_reply() -> Reply:
    """A 529 that the client retries (almost) at once."""
    return error_reply(529, "overloaded_error", "Overloaded", RETRY_NOW)


class FakeAnthropic(LocalServer):
    """``POST /v1/messages`` on 127.0.0.1, answered from a queue of ``Reply``s.

    When the queue is empty the server answers 500 with ``x-should-retry: false``:
    the test fails with a readable error instead of the client retrying with backoff.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.flow: list[tuple[int, RecordedRequest]] = []
        """Each request as it arrives (+1) and as its answer leaves (-1), in order."""
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        super().__init__(partial(_Handler, self), "fake-anthropic")

    @property
    def base_url(self) -> str:
        return self.origin

    def script(self, *replies: Reply) -> None:
        """Queue replies; each request takes the next one."""
        with self._lock:
            self._replies.extend(replies)

    def hold(self) -> None:
        """Keep every request from now on unanswered until ``let_go``: what is held is what
        the client has in flight."""
        self._open.clear()

    def let_go(self) -> None:
        self._open.set()

    def in_flight(self, label: Callable[[RecordedRequest], str]) -> tuple[Counter[str], Counter[str]]:
        """Requests in flight now and at most at once, counted by ``label`` (e.g. the model)."""
        now: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        with self._lock:
            for change, request in self.flow:
                now[label(request)] += change
                peak[label(request)] = max(peak[label(request)], now[label(request)])
        return +now, peak

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.flow.append((1, request))
            if request.path != "/v1/messages":
                return error_reply(404, "not_found_error", f"fake anthropic: no route {request.path}")
            refusal = _refused(request.body)
            if refusal is not None:
                return refusal
            if not self._replies:
                return error_reply(
                    500, "api_error", "fake anthropic: no scripted reply left", {"x-should-retry": "false"}
                )
            return self._replies.popleft()

    def _wait_until_let_go(self) -> None:
        self._open.wait(timeout=HOLD_LIMIT)

    def _answered(self, request: RecordedRequest) -> None:
        with self._lock:
            self.flow.append((-1, request))


THINKING_MODELS = frozenset({"claude-sonnet-5-5"})
"""Models that always think first: like the real API, the fake refuses forced tool use for them."""


def _refused(body: JSON) -> Reply | None:
    """The 400 the real API gives a request it cannot serve, so a wrong request fails here too."""
    choice = body.get("tool_choice") or {}
    thinking = body.get("model") in THINKING_MODELS or "thinking" in body
    if thinking and choice.get("type") in {"any", "tool"}:
        return error_reply(
            400, "invalid_request_error", "Thinking may not be enabled when tool_choice forces tool use."
        )
    return None


class _Handler(QuietHandler):
    def __init__(self, fake: FakeAnthropic, *args: Any, **kwargs: Any) -> None:
        # Set before super().__init__, which handles the request right away.
        self.fake = fake
        super().__init__(*args, **kwargs)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = RecordedRequest(self.path, headers, body)
        reply = self.fake._answer(request)
        self.fake._wait_until_let_go()
        time.sleep(reply.delay)
        self.fake._answered(request)
        payload = (reply.body if isinstance(reply.body, str) else json.dumps(reply.body)).encode()
        self.reply(reply.status, payload, reply.content_type, reply.headers)
