"""The request body size limit, checked before anything else reads, authenticates or parses a request.

``BodyLimit`` is plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which
buffers): a declared ``Content-Length`` over the limit is refused before a byte of
the body is read, and a chunked or under-declared body is read only up to the limit.
The refusal closes the connection, so the server stops reading the rest: an
unauthenticated 300 MB upload costs at most the limit in memory, not 300 MB.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger(__name__)

DEFAULT_MAX_BODY = 1024 * 1024
"""Bytes a request body may have unless a route's prefix says otherwise (``OUTERLOOP_MAX_BODY_BYTES``)."""


class BodyLimit:
    """Refuses a request whose body is larger than its path's limit with 413 JSON ``{"detail"}``.

    ``limits`` maps path prefixes to their own limits (webhooks keep theirs); every other
    path has ``default``. A body within the limit is read whole and handed on to ``app``
    as one message, so nothing downstream can read more than the limit.
    """

    def __init__(
        self, app: ASGIApp, default: int = DEFAULT_MAX_BODY, limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits or {})

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits.items() if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit, f"Content-Length {declared}")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            body += message.get("body", b"")
            if len(body) > limit:
                await _refuse(scope, send, limit, f"more than {limit} bytes sent")
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the body already read, then waits for the disconnect."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, limit: int, size: str) -> None:
    """Answer 413 and close the connection, so the server reads nothing more of this request."""
    detail = f"the request body is larger than {limit} bytes"
    log.info("http.rejected", path=scope["path"], status=413, reason=detail, size=size)
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
