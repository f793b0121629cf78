"""Shared fixtures: a real Redis (the machine's, one database flushed per test), a git repo with tags."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.runtime import Runtime
from bot.settings import Settings
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
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for tag in ("v1.0.0", "v1.1.0"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", tag], check=True)
        subprocess.run([*git, "tag", tag], check=True)
    return repo


@pytest.fixture
def deploy_log(tmp_path: Path) -> Path:
    """Where the test deploy command writes one line per run, to count runs."""
    return tmp_path / "deploys.log"


@pytest.fixture
def env(redis_url: str, tagged_repo: Path, deploy_log: Path) -> dict[str, str]:
    """The environment of an Outerloop process under test (scripted model, no keys)."""
    return {
        "REDIS_URL": redis_url,
        "OUTERLOOP_DEPLOY_REPO": str(tagged_repo),
        "OUTERLOOP_DEPLOY_COMMAND": f"sh -c 'echo {{tag}} {{environment}} >> {deploy_log}'",
        "OUTERLOOP_API_TOKEN": "test-token",
        "OUTERLOOP_LOCK_TTL": "2",
        "OUTERLOOP_SWEEP_INTERVAL": "0.5",
        "OUTERLOOP_AGENTS": "tests.agents:agents",
        "ANTHROPIC_API_KEY": "",
    }


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
