"""The console's pages: inbox, threads, a thread (with its actions), launch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from agent.events import Origin
from agent.thread import Status, Thread
from bot.console import access
from bot.console.app import Console, checked_form, console_of, person_of
from bot.console.approval import approval_of, field_problems, read_edit
from bot.console.sessions import Session
from bot.state.store import Appended, ThreadNotFound
from bot.web.errors import short
from channels.gateway import Conflict, NotAllowed

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)
CHANNELS = ("web", "api", "cli", "slack", "email", "cron", "webhook")
"""Channels the thread filter offers (a trigger's ``origin.channel``)."""
Text = Annotated[str | None, Query(max_length=200)]


class NotVisible(LookupError):
    """The thread does not exist, or this person may not see it (the same answer for both)."""


def _status_of(error: Exception) -> int:
    for kind, code in ((NotAllowed, 403), (Conflict, 409), (LookupError, 404), (ValueError, 422)):
        if isinstance(error, kind):
            return code
    raise error


@router.get("/")
@router.get("/console")
def home(request: Request) -> Response:
    return console_of(request).redirect("/console/inbox", person_of(request)[0])


@router.get("/console/inbox")
def inbox(request: Request) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    waiting = access.inbox(console.rt.store, console.rt.settings, person)
    mine = [item for item in waiting if item.mine]
    others = [item for item in waiting if not item.mine]
    return console.render(request, session, "inbox.html", mine=mine, others=others)


@router.get("/console/threads")
def threads(
    request: Request,
    status: Status | None = None,
    agent: Text = None,
    channel: Text = None,
    q: Text = None,
    cursor: Text = None,
) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    filters = access.Filters(status=status, agent=agent or None, channel=channel or None, text=q or None)
    found, following = access.threads(console.rt.store, console.rt.settings, person, filters, cursor)
    return console.render(
        request,
        session,
        "threads.html",
        threads=found,
        filters=filters,
        next_url=_next_url(request, following),
        statuses=list(Status),
        agents=sorted(spec.name for spec in console.rt.agents),
        channels=CHANNELS,
        channel_of=access.channel_of,
    )


def _next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    kept = {name: value for name, value in request.query_params.items() if name != "cursor" and value}
    return "/console/threads?" + urlencode(kept | {"cursor": cursor})


def _visible(console: Console, thread_id: str, person: str) -> Thread:
    try:
        thread = console.rt.store.load(thread_id[:100])
    except ThreadNotFound:
        thread = None
    if thread is None or not access.may_see(console.rt.settings, thread, person):
        raise NotVisible(f"no thread {thread_id[:100]!r} that you may see")
    return thread


def _pending_schema(console: Console, thread: Thread) -> dict[str, Any] | None:
    """The JSON schema of the arguments of the call waiting for approval, if one waits."""
    call = thread.pending.call if thread.pending is not None else None
    return console.rt.arguments_schema(thread.agent, call.tool) if call is not None else None


def _thread_page(
    request: Request,
    console: Console,
    session: Session,
    thread: Thread,
    code: int = 200,
    error: str = "",
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
) -> Response:
    """The thread page; after a refused edit, with the form as it was sent and what is wrong in it."""
    person = session.person or ""
    return console.render(
        request,
        session,
        "thread.html",
        code,
        thread=thread,
        may_answer=access.may_answer_now(thread, person),
        approval=approval_of(thread, person, _pending_schema(console, thread)),
        channel=access.channel_of(thread),
        error=error,
        form=form or {},
        problems=problems or {},
    )


@router.get("/console/threads/{thread_id}")
def thread(request: Request, thread_id: str) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    try:
        return _thread_page(request, console, session, _visible(console, thread_id, person))
    except NotVisible as missing:
        return console.render(request, session, "problem.html", 404, title="Not found", message=str(missing))


@router.get("/console/threads/{thread_id}/json")
def raw(request: Request, thread_id: str) -> Response:
    """The thread as stored: its id, agent and every event (what ``outerloop export`` writes)."""
    console, (session, person) = console_of(request), person_of(request)
    try:
        found = _visible(console, thread_id, person)
    except NotVisible as missing:
        return console.finish(JSONResponse({"detail": str(missing)}, status_code=404), session)
    return console.finish(Response(found.to_json(), media_type="application/json"), session)


async def _act(
    request: Request, thread_id: str, action: Callable[[Console, str, Thread, dict[str, str]], Appended]
) -> Response:
    """Run one action on a visible thread as the signed-in person; show the thread after it."""
    console, (session, person) = console_of(request), person_of(request)
    form = await checked_form(request, session)
    try:
        found = _visible(console, thread_id, person)
    except NotVisible as missing:
        return console.render(request, session, "problem.html", 404, title="Not found", message=str(missing))
    try:
        appended = action(console, person, found, form)
    except (NotAllowed, Conflict, LookupError, ValueError) as refused:
        code = _status_of(refused)
        log.info("http.rejected", path=request.url.path, status=code, reason=short(str(refused)))
        latest = console.rt.store.load(found.id)
        # What the person typed stays on the page when it is the typing that is wrong (422).
        kept = form if code == 422 else None
        return _thread_page(
            request, console, session, latest, code, short(str(refused)), kept, field_problems(refused)
        )
    return console.redirect(f"/console/threads/{appended.thread.id}", session)


def _field(form: dict[str, str], name: str, limit: int) -> str | None:
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value or None


@router.post("/console/threads/{thread_id}/respond")
async def respond(request: Request, thread_id: str) -> Response:
    def answer(console: Console, person: str, thread: Thread, form: dict[str, str]) -> Appended:
        decision = form.get("decision")
        if decision not in ("approve", "reject", "answer"):
            raise ValueError("choose approve, reject or answer")
        session = console.sessions.of(request)
        arguments, standing = None, None
        if decision == "approve" and form.get("edit"):
            schema = _pending_schema(console, thread)
            if schema is None:
                raise Conflict("this request has no arguments to edit now; look at it again")
            arguments, standing = read_edit(form, schema)
        return console.rt.respond(
            thread.id,
            form.get("request_id", "")[:100],
            person,
            approved={"approve": True, "reject": False}.get(decision),
            comment=_field(form, "reason", 5_000),
            answer=_field(form, "answer", 20_000),
            credential=session.credential,
            channel="console",
            digest=_field(form, "digest", 100),
            arguments=arguments,
            standing=standing,
        )

    return await _act(request, thread_id, answer)


@router.post("/console/threads/{thread_id}/control")
async def control(request: Request, thread_id: str) -> Response:
    def act(console: Console, person: str, thread: Thread, form: dict[str, str]) -> Appended:
        reason = _field(form, "reason", 2_000)
        match form.get("action"):
            case "pause":
                return console.rt.pause(thread.id, person, reason)
            case "resume":
                return console.rt.resume(thread.id, person)
            case "cancel":
                return console.rt.cancel(thread.id, person, reason)
        raise ValueError("choose pause, resume or cancel")

    return await _act(request, thread_id, act)


@router.post("/console/threads/{thread_id}/fork")
async def fork(request: Request, thread_id: str) -> Response:
    def copy(console: Console, person: str, thread: Thread, form: dict[str, str]) -> Appended:
        at = form.get("at", "")
        if not at.isdigit() or not 1 <= int(at) <= len(thread.events):
            raise ValueError(f"fork at an event number from 1 to {len(thread.events)}")
        return console.rt.fork(thread.id, int(at))

    return await _act(request, thread_id, copy)


@router.get("/console/launch")
def launch_page(request: Request) -> Response:
    console, (session, _) = console_of(request), person_of(request)
    return console.render(request, session, "launch.html", agents=list(console.rt.agents), error="")


@router.post("/console/launch")
async def launch(request: Request) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    form = await checked_form(request, session)
    try:
        text = _field(form, "text", 20_000)
        if text is None:
            raise ValueError("write what the agent should do")
        appended = console.rt.launch(
            form.get("agent", "")[:100], text, origin=Origin(channel="web", sender=person)
        )
    except (LookupError, ValueError) as refused:
        agents = list(console.rt.agents)
        error = short(str(refused))
        return console.render(request, session, "launch.html", 422, agents=agents, error=error, form=form)
    return console.redirect(f"/console/threads/{appended.thread.id}", session)
