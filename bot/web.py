"""The web app: the threads API (launch/respond/pause/resume/cancel/fork), health, and channel endpoints.

FastAPI serves the OpenAPI schema at ``/openapi.json`` and docs at ``/docs``. Every
``/threads*`` route needs ``Authorization: Bearer $OUTERLOOP_API_TOKEN``.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import redis
import structlog
from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from agent.definition import UnknownAgent
from agent.events import EVENTS_ADAPTER
from agent.thread import Status, Thread
from bot import slack
from bot.errors import install_error_shapes, short
from bot.limits import BodyLimit
from bot.runtime import Runtime
from bot.store import Appended, ThreadNotFound
from bot.webhooks import BODY_LIMITS, install_webhooks
from channels.gateway import Conflict, NotAllowed

log = structlog.get_logger(__name__)


class LaunchBody(BaseModel):
    agent: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=20_000)


class ResponseBody(BaseModel):
    request_id: str
    approved: bool | None = None
    comment: str | None = Field(default=None, max_length=5_000)
    answer: str | None = Field(default=None, max_length=20_000)
    responder: str = Field(
        default="api", max_length=200, description="Who answers, checked against approvers."
    )


class ControlBody(BaseModel):
    by: str = Field(default="api", max_length=200)
    reason: str | None = Field(default=None, max_length=2_000)


class ForkBody(BaseModel):
    at: int = Field(ge=1, description="How many of the source thread's events the fork keeps.")


class ThreadRef(BaseModel):
    id: str
    status: Status


class ThreadSummaryOut(ThreadRef):
    agent: str
    version: int
    created_at: float
    updated_at: float


class ThreadOut(ThreadRef):
    agent: str
    pending: dict[str, Any] | None
    events: list[dict[str, Any]]


class Unauthorized(Exception):
    """Missing or wrong bearer token."""


# Module level, so FastAPI can resolve the annotation of the dependency below.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="Outerloop", version="0.1.0", description=__doc__)

    def authorized(credentials: Credentials) -> None:
        expected = rt.settings.api_token
        if not expected:
            raise Unauthorized("the threads API is disabled: set OUTERLOOP_API_TOKEN")
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode(), expected.encode()
        ):
            raise Unauthorized("missing or wrong bearer token")

    # Outermost but for Starlette's own error middleware: nothing reads a body before its size is checked.
    app.add_middleware(BodyLimit, default=rt.settings.max_body_bytes, limits=BODY_LIMITS)
    install_error_shapes(app)
    _install_error_handlers(app)
    install_webhooks(app, rt)
    auth = [Depends(authorized)]

    @app.get("/healthz")
    def health() -> JSONResponse:
        try:
            rt.connection.ping()
        except redis.RedisError as exc:
            return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.post("/threads", status_code=status.HTTP_201_CREATED, dependencies=auth)
    def launch(body: LaunchBody) -> ThreadRef:
        return _ref(rt.launch(body.agent, body.text))

    @app.get("/threads", dependencies=auth)
    def list_threads(status: Status | None = None) -> list[ThreadSummaryOut]:
        return [ThreadSummaryOut(**vars(summary)) for summary in rt.store.summaries(status)]

    @app.get("/threads/{thread_id}", dependencies=auth)
    def show(thread_id: str) -> ThreadOut:
        return thread_out(rt.store.load(thread_id))

    @app.post("/threads/{thread_id}/responses", status_code=status.HTTP_202_ACCEPTED, dependencies=auth)
    def respond(thread_id: str, body: ResponseBody) -> ThreadRef:
        appended = rt.respond(
            thread_id,
            body.request_id,
            body.responder,
            approved=body.approved,
            comment=body.comment,
            answer=body.answer,
        )
        return _ref(appended)

    @app.post("/threads/{thread_id}/pause", status_code=status.HTTP_202_ACCEPTED, dependencies=auth)
    def pause(thread_id: str, body: ControlBody | None = None) -> ThreadRef:
        body = body or ControlBody()
        return _ref(rt.pause(thread_id, body.by, body.reason))

    @app.post("/threads/{thread_id}/resume", status_code=status.HTTP_202_ACCEPTED, dependencies=auth)
    def resume(thread_id: str, body: ControlBody | None = None) -> ThreadRef:
        return _ref(rt.resume(thread_id, (body or ControlBody()).by))

    @app.post("/threads/{thread_id}/cancel", status_code=status.HTTP_202_ACCEPTED, dependencies=auth)
    def cancel(thread_id: str, body: ControlBody | None = None) -> ThreadRef:
        body = body or ControlBody()
        return _ref(rt.cancel(thread_id, body.by, body.reason))

    @app.post("/threads/{thread_id}/fork", status_code=status.HTTP_201_CREATED, dependencies=auth)
    def fork(thread_id: str, body: ForkBody) -> ThreadRef:
        return _ref(rt.fork(thread_id, body.at))

    slack.mount(app, rt)
    return app


def thread_out(thread: Thread) -> ThreadOut:
    return ThreadOut(
        id=thread.id,
        agent=thread.agent,
        status=thread.status,
        pending=thread.pending.model_dump(mode="json") if thread.pending else None,
        events=EVENTS_ADAPTER.dump_python(list(thread.events), mode="json"),
    )


def _ref(appended: Appended) -> ThreadRef:
    return ThreadRef(id=appended.thread.id, status=appended.thread.status)


def _install_error_handlers(app: FastAPI) -> None:
    """Map the runtime's typed errors to HTTP statuses with the error's own message."""
    statuses: list[tuple[type[Exception], int]] = [
        (Unauthorized, status.HTTP_401_UNAUTHORIZED),
        (ThreadNotFound, status.HTTP_404_NOT_FOUND),
        (UnknownAgent, status.HTTP_422_UNPROCESSABLE_CONTENT),
        (NotAllowed, status.HTTP_403_FORBIDDEN),
        (Conflict, status.HTTP_409_CONFLICT),
        (LookupError, status.HTTP_404_NOT_FOUND),
        (ValueError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    ]
    for kind, code in statuses:
        app.add_exception_handler(kind, _handler(code))


def _handler(code: int) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        log.info("http.rejected", path=request.url.path, status=code, reason=short(str(exc)))
        headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
        return JSONResponse({"detail": short(str(exc))}, status_code=code, headers=headers)

    return handle
