"""The web app: the threads API (launch/respond/pause/resume/cancel/fork), health, and channel endpoints.

FastAPI serves the OpenAPI schema at ``/openapi.json`` and docs at ``/docs``. Every
``/threads*`` route needs ``Authorization: Bearer TOKEN``: a person's own token
(``outerloop tokens create``), which acts as that person, or the shared
``$OUTERLOOP_API_TOKEN``, which acts as ``api``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import redis
import structlog
from fastapi import Depends, FastAPI, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.approvals import Standing, call_digest
from agent.definition import UnknownAgent
from agent.events import EVENTS_ADAPTER, Grant, GrantScope, Origin
from agent.thread import Status, Thread
from bot import console, logs
from bot.approvals import audit
from bot.doors import slack
from bot.doors.webhooks import BODY_LIMITS, install_webhooks
from bot.metrics import exposition
from bot.runtime import Runtime
from bot.state.store import Appended, ThreadNotFound
from bot.usage.prices import Prices, load_prices
from bot.usage.tokens import spent
from bot.web.api_tokens import ApiTokens
from bot.web.errors import install_error_shapes, short
from bot.web.health import health_report
from bot.web.identity import Caller, Unauthorized, acting_as, authenticate
from bot.web.limits import BodyLimit
from bot.web.outage import install_outage_handler
from channels.gateway import Conflict, NotAllowed

log = structlog.get_logger(__name__)


class LaunchBody(BaseModel):
    agent: str = Field(min_length=1, max_length=100)
    text: str = Field(max_length=20_000, description="What to do; blank text is refused.")


class ResponseBody(BaseModel):
    request_id: str
    approved: bool | None = None
    comment: str | None = Field(default=None, max_length=5_000)
    answer: str | None = Field(default=None, max_length=20_000)
    responder: str | None = Field(
        default=None,
        max_length=200,
        description="Who answers, checked against approvers; default and only choice: the caller. "
        "The shared token may name someone else only with OUTERLOOP_API_TRUSTED_RESPONDER=true.",
    )
    digest: str | None = Field(
        default=None,
        max_length=64,
        description="The digest of the arguments you approve (pending.digest): an approval for "
        "arguments that have changed since is refused. Default: the arguments as they stand.",
    )
    arguments: dict[str, Any] | None = Field(
        default=None, description="Approve with these arguments instead (checked against the tool's model)."
    )
    scope: GrantScope | None = Field(
        default=None,
        description="Approve standing: every call in this scope (thread, call, tool) runs unasked.",
    )
    hours: float | None = Field(default=None, gt=0, description="How long the standing approval lasts.")


class ControlBody(BaseModel):
    by: str | None = Field(default=None, max_length=200, description="Who acts; as `responder` above.")
    reason: str | None = Field(default=None, max_length=2_000)


class ForkBody(BaseModel):
    at: int = Field(description="How many of the source thread's events the fork keeps (1 to their count).")


class ThreadRef(BaseModel):
    id: str
    status: Status


class ThreadSummaryOut(ThreadRef):
    agent: str
    version: int
    created_at: float
    updated_at: float


class UsageOut(BaseModel):
    """Tokens and cost of the thread's own model calls (a fork's: those since it was forked)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    latency: float = Field(description="Seconds the model calls took, summed.")
    cost_usd: float | None = Field(description="null: unknown, some call's model has no price.")
    unpriced_models: list[str] = Field(description="Models that used tokens but have no price.")


class ThreadOut(ThreadRef):
    agent: str
    pending: dict[str, Any] | None
    events: list[dict[str, Any]]
    usage: UsageOut


# Module level, so FastAPI can resolve the annotations of the dependencies below.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def _caller(request: Request, credentials: Credentials) -> Caller:
    rt: Runtime = request.app.state.runtime
    bearer = credentials.credentials if credentials else None
    return authenticate(bearer, rt.settings.api_token, request.app.state.api_tokens)


def _caller_if_any(request: Request, credentials: Credentials) -> Caller | None:
    return _caller(request, credentials) if credentials else None


Who = Annotated[Caller, Depends(_caller)]


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(title="Outerloop", version="0.1.0", description=__doc__)
    app.state.runtime = rt
    app.state.api_tokens = ApiTokens(rt.connection)
    prices = load_prices(rt.settings.prices_file)  # a wrong price file stops the app at start

    def as_whom(caller: Caller, named: str | None) -> str:
        return acting_as(caller, named, rt.settings.api_trusted_responder)

    # Outermost but for Starlette's own error middleware: nothing reads a body before its size is checked.
    app.add_middleware(ThreadLogContext, agent_of=rt.store.agent_of)
    app.add_middleware(BodyLimit, default=rt.settings.max_body_bytes, limits=BODY_LIMITS)
    install_error_shapes(app)
    _install_error_handlers(app)
    outage = install_outage_handler(app, rt.connection)
    install_webhooks(app, rt)
    auth = [Depends(_caller)]

    @app.get("/healthz")
    def health(caller: Annotated[Caller | None, Depends(_caller_if_any)]) -> JSONResponse:
        """ok or unavailable for anyone; what is wrong only for an authenticated caller."""
        report = health_report(rt.connection)
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return JSONResponse(report if caller else {"status": report["status"]}, status_code=code)

    @app.post("/threads", status_code=status.HTTP_201_CREATED)
    def launch(body: LaunchBody, caller: Who) -> ThreadRef:
        return _ref(rt.launch(body.agent, body.text, origin=Origin(channel="api", sender=caller.person)))

    @app.get("/threads", dependencies=auth)
    def list_threads(
        response: Response,
        status: Status | None = None,
        agent: Annotated[str | None, Query(max_length=100)] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[ThreadSummaryOut]:
        """A page of threads, newest first; a ``Link: <...>; rel="next"`` header names the next."""
        page = rt.store.page(status, agent, cursor, limit)
        if page.cursor is not None:
            following = {"status": status.value if status else None, "agent": agent, "limit": limit}
            query = urlencode({k: v for k, v in following.items() if v is not None} | {"cursor": page.cursor})
            response.headers["Link"] = f'</threads?{query}>; rel="next"'
        return [ThreadSummaryOut(**vars(summary)) for summary in page.threads]

    @app.get("/threads/{thread_id}", dependencies=auth)
    def show(thread_id: str) -> ThreadOut:
        return thread_out(rt.store.load(thread_id), prices)

    @app.post("/threads/{thread_id}/responses", status_code=status.HTTP_202_ACCEPTED)
    def respond(thread_id: str, body: ResponseBody, caller: Who) -> ThreadRef:
        appended = rt.respond(
            thread_id,
            body.request_id,
            as_whom(caller, body.responder),
            approved=body.approved,
            comment=body.comment,
            answer=body.answer,
            credential=caller.credential,
            channel="api",
            digest=body.digest,
            arguments=body.arguments,
            standing=Standing(body.scope, body.hours) if body.scope is not None else None,
        )
        return _ref(appended)

    @app.get("/grants", dependencies=auth)
    def list_grants() -> list[Grant]:
        """The live standing approvals, oldest first."""
        return list(rt.grants.live())

    @app.delete("/grants/{grant_id}")
    def revoke_grant(grant_id: str, caller: Who) -> Grant:
        """End a standing approval now; recorded in the thread it was given in."""
        return rt.revoke(grant_id, caller.person)

    @app.get("/audit", dependencies=auth)
    def audit_trail(
        since: Annotated[str, Query(max_length=20, description="How far back: 7d, 12h, 30m.")] = "7d",
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[audit.Decision]:
        """Every decision recorded since then, oldest first: who, which call, digest, edits, door, grant."""
        return audit.since(rt.connection, audit.parse_since(since), limit)

    @app.post("/threads/{thread_id}/pause", status_code=status.HTTP_202_ACCEPTED)
    def pause(thread_id: str, caller: Who, body: ControlBody | None = None) -> ThreadRef:
        body = body or ControlBody()
        return _ref(rt.pause(thread_id, as_whom(caller, body.by), body.reason))

    @app.post("/threads/{thread_id}/resume", status_code=status.HTTP_202_ACCEPTED)
    def resume(thread_id: str, caller: Who, body: ControlBody | None = None) -> ThreadRef:
        return _ref(rt.resume(thread_id, as_whom(caller, (body or ControlBody()).by)))

    @app.post("/threads/{thread_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
    def cancel(thread_id: str, caller: Who, body: ControlBody | None = None) -> ThreadRef:
        body = body or ControlBody()
        return _ref(rt.cancel(thread_id, as_whom(caller, body.by), body.reason))

    @app.post("/threads/{thread_id}/fork", status_code=status.HTTP_201_CREATED, dependencies=auth)
    def fork(thread_id: str, body: ForkBody) -> ThreadRef:
        return _ref(rt.fork(thread_id, body.at))

    slack.mount(app, rt, outage)
    console.mount(app, rt)
    exposition.mount(app, rt)
    return app


THREAD_PATH = re.compile(r"^/(?:console/)?threads/([0-9A-Za-z]{1,64})(?:/|$)")


class ThreadLogContext:
    """Names the thread a request is about (``/threads/{id}...``) and its agent on every line
    logged while it is answered: refusals, the events it submits, the access line."""

    def __init__(self, app: ASGIApp, agent_of: Callable[[str], str | None]) -> None:
        self.app = app
        self.agent_of = agent_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = THREAD_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        thread_id = found.group(1)
        try:  # off the event loop: Redis may be slow to say it is away
            agent = await run_in_threadpool(self.agent_of, thread_id)
        except redis.RedisError:  # the outage handler answers; the line names the thread still
            agent = None
        fields = {"thread_id": thread_id, **({"agent": agent} if agent else {})}
        with logs.working_on(**fields):
            await self.app(scope, receive, send)


def thread_out(thread: Thread, prices: Prices) -> ThreadOut:
    return ThreadOut(
        id=thread.id,
        agent=thread.agent,
        status=thread.status,
        pending=_pending(thread),
        events=EVENTS_ADAPTER.dump_python(list(thread.events), mode="json"),
        usage=UsageOut(**spent(thread.events, prices).as_json()),
    )


def _pending(thread: Thread) -> dict[str, Any] | None:
    """The pending request, with the digest an approval of its call binds to and who approved
    it so far (while short of its quorum)."""
    pending = thread.pending
    if pending is None:
        return None
    shown = pending.model_dump(mode="json")
    if pending.call is not None:
        shown["digest"] = call_digest(pending.call)
        shown["approved_by"] = list(thread.approvals)
    return shown


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
