"""Console test helpers: sign a browser-like client in, read a page's CSRF token, post forms."""

from __future__ import annotations

import re

import httpx

from bot.console.links import create_link
from bot.runtime import Runtime

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, f"no CSRF token on {page.url}"
    return found.group(1)


def sign_in(client: httpx.Client, runtime: Runtime, person: str) -> None:
    """Sign ``client`` in as ``person`` with a one-time link, as a browser would."""
    link = create_link(runtime.connection, runtime.settings, person)
    page = client.get(link)
    token = link.partition("token=")[2]
    answer = client.post("/console/signin/link", data={"csrf": csrf_of(page), "token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/inbox", answer.text


def post_form(client: httpx.Client, page_path: str, target: str, **fields: str) -> httpx.Response:
    """Post ``fields`` to ``target`` with the CSRF token of the page at ``page_path``."""
    token = csrf_of(client.get(page_path))
    return client.post(target, data={"csrf": token, **fields})
