"""Sign-in routes: with Slack (OpenID Connect), by a link mailed or printed, and sign-out."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bot.console import slack_signin
from bot.console.app import checked_form, console_of, session_of
from bot.console.links import mail_link, spend_link
from bot.console.slack_signin import SlackSignInFailed

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/console", include_in_schema=False)
Token = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/signin")
def signin_page(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    mail = bool(console.rt.settings.smtp_host)
    return console.render(request, session, "signin.html", slack=console.slack is not None, mail=mail)


@router.post("/signin/email")
async def signin_by_mail(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    form = await checked_form(request, session)
    address = form.get("email", "").strip()[:320]
    # The same answer whether a link went out or not: nobody learns who may sign in.
    mail_link(console.rt.connection, console.rt.settings, address)
    return console.render(request, session, "link_sent.html", address=address)


@router.get("/signin/link")
def link_page(request: Request, token: Token) -> Response:
    console, session = console_of(request), session_of(request)
    return console.render(request, session, "link.html", token=token)


@router.post("/signin/link")
async def spend(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    form = await checked_form(request, session)
    person = spend_link(console.rt.connection, form.get("token", "")[:200])
    if person is None:
        log.info("console.signin_refused", via="link", reason="unknown, used or expired link")
        message = "This sign-in link is unknown, was used already or has expired: ask for a new one."
        return console.render(request, session, "problem.html", 403, title="Link refused", message=message)
    via = "email" if "@" in person else "link"
    log.info("console.signed_in", via=via)
    return console.redirect("/console/inbox", console.sessions.sign_in(person, via))


@router.get("/signin/slack")
def slack_start(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    if console.slack is None:
        message = "Sign in with Slack is not set up: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET."
        return console.render(request, session, "problem.html", 404, title="Not set up", message=message)
    return console.redirect(slack_signin.start(console.slack, console.rt.connection, session.id), session)


@router.get("/signin/slack/callback")
async def slack_callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=2000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    console, session = console_of(request), session_of(request)
    try:
        if console.slack is None or error or not (state and code):
            raise SlackSignInFailed(f"Slack did not sign you in{f' ({error})' if error else ''}: try again")
        person = await slack_signin.finish(console.slack, console.rt.connection, session.id, state, code)
    except SlackSignInFailed as failed:
        log.info("console.signin_refused", via="slack", reason=str(failed))
        return console.render(
            request, session, "problem.html", 403, title="Sign-in failed", message=str(failed)
        )
    log.info("console.signed_in", via="slack")
    return console.redirect("/console/inbox", console.sessions.sign_in(person, "slack"))


@router.post("/signout")
async def signout(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    await checked_form(request, session)
    return console.redirect("/console/signin", console.sessions.sign_out(session))
