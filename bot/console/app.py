"""The console's shared parts: templates, sessions, the signed-in person, and how pages answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from bot.console import formatting
from bot.console.sessions import Session, Sessions, console_secret
from bot.console.slack_signin import SlackOpenId, slack_openid
from bot.runtime import Runtime

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self' https:",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Sign-in links carry their token in the URL: no other site may see it as a Referer.
    "Referrer-Policy": "same-origin",
}


class SignInNeeded(Exception):
    """A page needs a signed-in person; the browser is sent to sign in."""


@dataclass
class Console:
    rt: Runtime
    templates: Jinja2Templates

    @cached_property
    def sessions(self) -> Sessions:
        """Made on first use, not with the app: the web app starts even while Redis is down."""
        settings = self.rt.settings
        secret = console_secret(settings, self.rt.connection)
        return Sessions(self.rt.connection, secret, secure=settings.console_base.startswith("https://"))

    @property
    def slack(self) -> SlackOpenId | None:
        """Slack sign-in as the settings say now (tests serve on a port chosen after start)."""
        return slack_openid(self.rt.settings)

    @classmethod
    def create(cls, rt: Runtime) -> Console:
        templates = Jinja2Templates(directory=HERE / "templates")
        formatting.install(templates.env)
        return cls(rt, templates)

    def render(
        self, request: Request, session: Session, template: str, code: int = 200, **context: Any
    ) -> Response:
        context |= {
            "session": session,
            "csrf": self.sessions.csrf_token(session),
            "now": datetime.now(UTC),
        }
        response = self.templates.TemplateResponse(request, template, context, status_code=code)
        return self.finish(response, session)

    def redirect(self, url: str, session: Session) -> Response:
        return self.finish(RedirectResponse(url, status_code=303), session)

    def finish(self, response: Response, session: Session) -> Response:
        response.headers.update(SECURITY_HEADERS)
        self.sessions.keep(response, session)
        return response


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def session_of(request: Request) -> Session:
    return console_of(request).sessions.of(request)


def person_of(request: Request) -> tuple[Session, str]:
    """The session and its person; raises ``SignInNeeded`` for a browser not signed in."""
    session = session_of(request)
    if session.person is None:
        raise SignInNeeded
    return session, session.person


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The posted form's text fields, after checking its CSRF token (raises ``CsrfRefused``)."""
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    console_of(request).sessions.check_csrf(session, fields.get("csrf"))
    return fields
