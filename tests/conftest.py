"""Shared fixtures: a real Redis (the machine's, one database flushed per test), a git repo with tags."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.runtime import Runtime
from bot.settings import Settings
from tests import services
from tests.fake_slack import FakeSlack
from tests.services import Workers

TEST_REDIS_URL = os.environ.get("OUTERLOOP_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
"""The machine's Redis; this database (9 unless set) is the suite's and is flushed around every test.
Give concurrent runs (several checkouts on one machine) different databases."""


@pytest.fixture
def redis_url() -> Iterator[str]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield TEST_REDIS_URL
    client.flushdb()


@pytest.fixture
def tagged_repo(tmp_path: Path) -> Path:
    """A git repository with tags v1.0.0 and v1.1.0, for the deploy agent."""
    return services.tagged_repo(tmp_path / "repo")


@pytest.fixture
def deploy_log(tmp_path: Path) -> Path:
    """Where the test deploy command writes one line per run, to count runs."""
    return tmp_path / "deploys.log"


@pytest.fixture
def env(redis_url: str, tagged_repo: Path, deploy_log: Path) -> dict[str, str]:
    """The environment of an Outerloop process under test (scripted model, no keys)."""
    return services.outerloop_env(
        redis_url, tagged_repo, f"sh -c 'echo {{tag}} {{environment}} >> {deploy_log}'"
    )


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime.from_settings(settings)


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(env, tmp_path / "processes.log")
    yield pool
    pool.stop_all()
    # Shown by pytest only when the test failed: what the workers said.
    print(pool.log.read_text() if pool.log.exists() else "(no process output)")


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """The local fake of the Slack Web API, recording every call."""
    with FakeSlack() as slack:
        yield slack
