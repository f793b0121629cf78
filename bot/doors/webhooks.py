"""The web app's ``POST /webhooks/{name}`` route, for the webhooks in ``OUTERLOOP_WEBHOOKS``.

The checks live in ``channels.webhook``; this module reads the body (``bot.web.limits``
has refused it unless it is at most ``MAX_BODY`` bytes), hands it over off the event
loop, and maps refusals to HTTP: 401 unverified, 404 unknown name, 413 too large,
422 unusable payload.
"""

from __future__ import annotations

import os
import time

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from agent.thread import Status
from bot.runtime import Runtime
from channels.webhook import (
    MAX_BODY,
    PayloadTooLarge,
    Webhook,
    WebhookChannel,
    WebhookRejected,
    load_webhooks,
)

log = structlog.get_logger(__name__)

BODY_LIMITS = {"/webhooks/": MAX_BODY}
"""The webhooks' own body limit, for ``bot.web.limits.BodyLimit``: what the channel accepts."""


class WebhookAccepted(BaseModel):
    id: str
    """The thread the delivery started (for a replayed delivery: the one its first copy started)."""
    status: Status
    duplicate: bool


def webhooks(rt: Runtime) -> dict[str, Webhook]:
    """The configured webhooks, each checked to name an agent this deployment has."""
    path = rt.settings.webhooks_file
    hooks = load_webhooks(path, os.environ) if path is not None else {}
    for hook in hooks.values():
        rt.agents.get(hook.agent)
    return hooks


def install_webhooks(app: FastAPI, rt: Runtime) -> None:
    channel = WebhookChannel(webhooks(rt), rt)

    @app.post("/webhooks/{name}", status_code=status.HTTP_202_ACCEPTED, tags=["webhooks"])
    async def webhook(name: str, request: Request) -> WebhookAccepted:
        """Start a thread from a signed delivery (see the README for the headers)."""
        body = await request.body()
        submitted = await run_in_threadpool(channel.receive, name, request.headers, body, time.time())
        thread = submitted.thread
        return WebhookAccepted(id=thread.id, status=thread.status, duplicate=not submitted.applied)

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        code = status.HTTP_401_UNAUTHORIZED if isinstance(exc, WebhookRejected) else 413
        log.info("http.rejected", path=request.url.path, status=code, reason=str(exc))
        return JSONResponse({"detail": str(exc)}, status_code=code)

    app.add_exception_handler(WebhookRejected, refused)
    app.add_exception_handler(PayloadTooLarge, refused)
