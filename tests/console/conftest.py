"""Console fixtures: the web app with approvers set, served over HTTP, and clients signed in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from tests.answering import advance_and_answer
from tests.console.helpers import sign_in
from tests.file_agents import shipper
from tests.services import serve

ALICE = "alice@example.com"
"""An approver of the deploy agent."""
BOB = "bob@example.com"
"""Signed in, but no approver."""
CAROL = "carol@example.com"
"""Another approver, the second of two."""
TWO_PERSON = "twoperson"
"""A deploy agent in files whose ``deploy`` needs two distinct approvers."""
STANDING = "standing"
"""A deploy agent in files whose ``deploy`` may be approved with a standing scope."""


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    agents = shipper(tmp_path / "agents", "min_approvals = 2", TWO_PERSON)
    shipper(agents, "standing = true", STANDING)
    return {**env, "OUTERLOOP_APPROVERS": f"{ALICE},U0BOSS,{CAROL}", "OUTERLOOP_AGENTS_DIR": str(agents)}


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


def waiting_deploy(runtime: Runtime, text: str = "ship it", agent: str = "deploy") -> tuple[str, str]:
    """A deploy thread waiting for approval, advanced in this process: its id and request id."""
    thread_id = runtime.launch(agent, text).thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    return thread_id, thread.pending.request_id


@pytest.fixture
def carol(base_url: str, runtime: Runtime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        sign_in(client, runtime, CAROL)
        yield client
