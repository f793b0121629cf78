"""Agents in files through the runtime: launch, approval, done; and agents that cannot run."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.events import Failed
from agent.thread import Status
from bot.commands.timeline import timeline
from bot.runtime import Runtime
from bot.settings import Settings
from tests.answering import advance_and_answer
from tests.mcp.conftest import AgentFolder


@pytest.fixture
def env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**env, "OUTERLOOP_AGENTS_DIR": str(tmp_path / "agents")}


def test_an_agent_in_files_runs_a_destructive_mcp_tool_only_after_approval(
    agent_folder: AgentFolder, effects: Path, settings: Settings
) -> None:
    agent_folder(extra='[mcp.tools.delete_repo]\napprovers = ["U0OPS"]')
    runtime = Runtime.from_settings(settings)
    thread_id = runtime.launch("repos", "old-repo").thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None and thread.pending.approvers == ("U0OPS",)
    assert effects.read_text() == "", "nothing ran before the approval"
    runtime.respond(thread_id, thread.pending.request_id, "U0OPS", approved=True)
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.DONE
    assert effects.read_text().splitlines() == ["delete_repo old-repo"]


def cannot_run(runtime: Runtime, agent: str) -> str:
    thread_id = runtime.launch(agent, "hello").thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.FAILED
    assert advance_and_answer(runtime, thread_id) == thread, "failed once, not retried"
    [failed] = [e for e in thread.events if isinstance(e, Failed)]
    assert "failed" in timeline(thread)
    return failed.reason


def test_an_agent_without_a_model_fails_its_thread_at_once_saying_why(
    agent_folder: AgentFolder, settings: Settings
) -> None:
    agent_folder(script=None)
    shown = cannot_run(Runtime.from_settings(settings), "repos")
    assert "ANTHROPIC_API_KEY is not set and the agent has no script.json" in shown


def test_an_agent_whose_mcp_server_never_starts_fails_its_thread_at_once(
    agent_folder: AgentFolder, settings: Settings
) -> None:
    folder = agent_folder()
    toml = folder / "agent.toml"
    toml.write_text(toml.read_text().replace('args = ["-m"', 'args = ["-m", "no.such.module", "-m"'))
    shown = cannot_run(Runtime.from_settings(settings), "repos")
    assert "MCP server repos" in shown and "did not start" in shown


def test_an_agent_whose_prompt_went_missing_fails_its_thread_at_once(
    agent_folder: AgentFolder, settings: Settings
) -> None:
    folder = agent_folder()
    runtime = Runtime.from_settings(settings)
    (folder / "prompt.md").unlink()
    assert "its prompt file does not exist" in cannot_run(runtime, "repos")
