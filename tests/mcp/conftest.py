"""Fixtures for MCP tests: the effects file every test server tool writes, and agent folders."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.services import REPO

AGENT_TOML = """\
description = "It looks after repositories."

[[mcp]]
name = "repos"
command = "{python}"
args = ["-m", "tests.mcp.server", "stdio"]
env = {{ PYTHONPATH = "${{OUTERLOOP_TEST_REPO}}", MCP_EFFECTS = "${{MCP_EFFECTS}}" }}
{extra}
"""
SCRIPT = """{"rules": [
  {"after": "trigger", "tool": "delete_repo", "arguments": {"name": "${trigger}"}},
  {"after": "tool_result:delete_repo", "tool": "done_for_now", "arguments": {"message": "${result}"}},
  {"after": "human_response:rejected", "tool": "done_for_now", "arguments": {"message": "not deleted"}}
]}"""


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each run of a test server's tool appends a line here."""
    path = tmp_path / "effects.log"
    path.touch()
    monkeypatch.setenv("MCP_EFFECTS", str(path))
    monkeypatch.setenv("OUTERLOOP_TEST_REPO", str(REPO))
    return path


AgentFolder = Callable[..., Path]


@pytest.fixture
def agent_folder(tmp_path: Path, effects: Path) -> AgentFolder:
    """Write ``agents/<name>`` using the stdio test server; ``extra`` is appended to its toml."""

    def write(name: str = "repos", extra: str = "", script: str | None = SCRIPT) -> Path:
        folder = tmp_path / "agents" / name
        folder.mkdir(parents=True)
        (folder / "agent.toml").write_text(AGENT_TOML.format(python=sys.executable, extra=extra))
        (folder / "prompt.md").write_text("Look after the repositories.")
        if script is not None:
            (folder / "script.json").write_text(script)
        return folder

    return write
