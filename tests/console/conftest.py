"""Console fixtures: the web app with approvers set, served over HTTP, and clients signed in."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web import create_app
from tests.answering import advance_and_answer
from tests.console.helpers import sign_in
from tests.services import serve

ALICE = "alice@example.com"
"""An approver of the deploy agent."""
BOB = "bob@example.com"
"""Signed in, but no approver."""


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OUTERLOOP_APPROVERS": f"{ALICE},U0BOSS"}


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime.from_settings(settings)


@pytest.fixture
def base_url(runtime: Runtime) -> Iterator[str]:
    with serve(create_app(runtime)) as url:
        runtime.settings.console_url = url
        yield url


@pytest.fixture
def anonymous(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.fixture
def alice(base_url: str, runtime: Runtime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        sign_in(client, runtime, ALICE)
        yield client


@pytest.fixture
def bob(base_url: str, runtime: Runtime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        sign_in(client, runtime, BOB)
        yield client


def waiting_deploy(runtime: Runtime, text: str = "ship it") -> tuple[str, str]:
    """A deploy thread waiting for approval, advanced in this process: its id and request id."""
    thread_id = runtime.launch("deploy", text).thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    return thread_id, thread.pending.request_id
