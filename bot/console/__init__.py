"""The web console: what every agent is doing, and the requests waiting on you, in the browser.

Server-rendered HTML (Jinja2) with a little JavaScript of our own, served by the same web
app as the API under ``/console`` (``/`` leads there). ``mount`` adds it to the app.
Everything it does goes through the ``Runtime`` calls the API uses, as the signed-in person.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.console.app import Console, install
from bot.runtime import Runtime


def mount(app: FastAPI, rt: Runtime) -> None:
    """Serve the console from ``app``: pages, sign-in, live updates and static files."""
    install(app, Console.create(rt))
