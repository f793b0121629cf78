"""The web console: what every agent is doing, and the requests waiting on you, in the browser.

Server-rendered HTML (Jinja2) with a little JavaScript of our own, served by the same web
app as the API under ``/console`` (``/`` leads there). ``mount`` adds it to the app.
Everything it does goes through the ``Runtime`` calls the API uses, as the signed-in person.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from bot.console import grants, live, pages, signin
from bot.console.app import HERE, Console, SignInNeeded, session_of
from bot.console.sessions import CsrfRefused
from bot.runtime import Runtime

log = structlog.get_logger(__name__)


def mount(app: FastAPI, rt: Runtime) -> None:
    """Serve the console from ``app``: pages, sign-in, live updates and static files."""
    console = Console.create(rt)
    app.state.console = console
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(signin.router)
    app.include_router(pages.router)
    app.include_router(grants.router)
    app.include_router(live.router)

    async def sign_in_first(request: Request, exc: Exception) -> Response:
        return console.redirect("/console/signin", session_of(request))

    async def refuse_form(request: Request, exc: Exception) -> Response:
        log.info("http.rejected", path=request.url.path, status=403, reason="csrf")
        session = session_of(request)
        return console.render(request, session, "problem.html", 403, title="Form refused", message=str(exc))

    app.add_exception_handler(SignInNeeded, sign_in_first)
    app.add_exception_handler(CsrfRefused, refuse_form)
