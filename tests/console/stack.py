"""A real console to drive from a browser: ``outerloop web`` and a worker as processes, and
Debian's Chromium under Playwright. The browser tests and the screenshot script share it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.console.links import create_link
from bot.runtime import Runtime
from bot.settings import Settings
from tests.services import Workers, cli_args, free_port, wait_for

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``.ci/run`` installs it): Playwright cannot download its own build here."""


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def console_processes(env: dict[str, str], log: Path) -> Iterator[tuple[str, Workers]]:
    """``outerloop web`` on a free port (its URL is the console's) and the process pool it is in;
    start workers with ``pool.start()`` when the test wants threads to move."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    pool = Workers({**env, "PORT": str(port), "OUTERLOOP_CONSOLE_URL": url}, log)
    pool.start(1, cli_args("web"))
    try:
        wait_for(lambda: _answers(url), "outerloop web to answer", timeout=30)
        yield url, pool
    finally:
        pool.stop_all()


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def signed_in_page(browser: Browser, runtime: Runtime, person: str, width: int = 1100) -> Page:
    """A new browser session signed in as ``person`` through a one-time link, on its inbox."""
    page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
    page.goto(create_link(runtime.connection, runtime.settings, person))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("person")).to_have_text(person)
    return page


@dataclass(frozen=True)
class Stack:
    """A running console (``url``), its process pool, a browser, and a runtime on the same Redis."""

    url: str
    pool: Workers
    browser: Browser
    runtime: Runtime


@contextmanager
def console_stack(env: dict[str, str], settings: Settings, log: Path) -> Iterator[Stack]:
    """``console_processes`` and ``chromium`` together, with a runtime whose links lead to the console."""
    with console_processes(env, log) as (url, pool), chromium() as browser:
        settings.console_url = url
        yield Stack(url, pool, browser, Runtime.from_settings(settings))
