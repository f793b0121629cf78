"""The bundled deploy agent, run offline with its scripted model against a real git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.definition import AgentSpec
from agent.events import Done, Error, HumanResponse, ToolCall, ToolResult
from agent.loop import advance
from agent.scripted_model import ScriptedModel
from agent.thread import Status, Thread, reduce
from bot.agents.deploy import SCRIPT, deploy_agent
from bot.settings import Settings
from tests.kernel_helpers import APPROVER, RecordingModel, events_of, respond, started

TAGS = ("v1.0.0", "v1.1.0")
"""Created oldest first; list_tags returns them newest first."""


def git(repo: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=Test", "-c", "user.email=test@example.com", *arguments],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def deploy(tmp_path: Path) -> AgentSpec:
    git(tmp_path, "init", "-q")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "initial")
    for tag in TAGS:
        git(tmp_path, "tag", tag)
    return deploy_agent(tmp_path, "echo deploying {tag} to {environment}", approvers=(APPROVER,))


@pytest.fixture
def model() -> RecordingModel:
    return RecordingModel(ScriptedModel.from_file(SCRIPT))


def proposed(deploy: AgentSpec, model: RecordingModel) -> Thread:
    """Run the agent on a request until it asks to deploy the latest tag."""
    thread = advance(started("ship the latest release"), deploy, model)
    assert thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None and thread.pending.call is not None
    assert (thread.pending.call.tool, thread.pending.call.arguments) == (
        "deploy",
        {"tag": "v1.1.0", "environment": "staging"},
    )
    return thread


def test_the_deploy_agent_lists_tags_asks_then_deploys_the_latest(
    deploy: AgentSpec, model: RecordingModel
) -> None:
    thread = proposed(deploy, model)
    thread = advance(respond(thread, approved=True), deploy, model)

    assert thread.status is Status.DONE
    outputs = [(r.tool, r.output) for r in events_of(thread, ToolResult)]
    assert outputs == [
        ("list_tags", "v1.1.0\nv1.0.0"),
        ("deploy", "deployed v1.1.0 to staging\ndeploying v1.1.0 to staging"),
    ]
    [done] = events_of(thread, Done)
    assert done.message.startswith("Done: deployed v1.1.0 to staging.")


def test_the_deploy_agent_reports_an_unknown_tag_to_the_model(
    deploy: AgentSpec, model: RecordingModel, tmp_path: Path
) -> None:
    thread = proposed(deploy, model)
    git(tmp_path, "tag", "-d", "v1.1.0")  # deleted while the approval was pending
    thread = advance(respond(thread, approved=True), deploy, model)

    [error] = events_of(thread, Error)
    assert (error.source, error.tool) == ("tool", "deploy")
    assert error.message == "ValueError: unknown tag 'v1.1.0'; call list_tags to see the tags"
    assert error.message in model.requests[-1].context
    assert thread.status is Status.AWAITING_HUMAN


def test_the_deploy_agent_stops_with_the_reason_when_rejected(
    deploy: AgentSpec, model: RecordingModel
) -> None:
    thread = proposed(deploy, model)
    thread = advance(respond(thread, approved=False, comment="freeze until Monday"), deploy, model)

    assert thread.status is Status.DONE
    assert [c.tool for c in events_of(thread, ToolCall)] == ["list_tags"]
    [done] = events_of(thread, Done)
    assert done.message == "Not deploying: freeze until Monday"


def test_the_deploy_agent_ignores_a_late_approval_after_a_rejection(
    deploy: AgentSpec, model: RecordingModel
) -> None:
    thread = proposed(deploy, model)
    assert thread.pending is not None
    late_click = HumanResponse(request_id=thread.pending.request_id, responder=APPROVER, approved=True)
    thread = respond(thread, approved=False, comment="freeze until Monday")
    thread = advance(reduce(thread, late_click), deploy, model)

    assert thread.status is Status.DONE
    [done] = events_of(thread, Done)
    assert done.message == "Not deploying: freeze until Monday"


def test_tool_approvers_replace_the_agents_approvers_for_that_tool(
    deploy: AgentSpec, model: RecordingModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTERLOOP_TOOL_APPROVERS", '{"deploy": ["S0OPS", "U0LEAD"]}')
    per_tool = Settings().tool_approvers
    assert per_tool == {"deploy": ("S0OPS", "U0LEAD")}
    guarded = deploy_agent(tmp_path, "true", approvers=(APPROVER,), tool_approvers=per_tool)
    thread = advance(started("ship the latest release"), guarded, model)
    assert thread.pending is not None and thread.pending.approvers == ("S0OPS", "U0LEAD")
    assert guarded.approvers == (APPROVER,), "other requests still go to the agent's approvers"


@pytest.mark.parametrize(
    ("request_text", "tag", "environment"),
    [
        ("deploy v1.0.0 to production", "v1.0.0", "production"),
        ("please roll out v1.1.0 on staging first", "v1.1.0", "staging"),
        ("ship the latest release", "v1.1.0", "staging"),
    ],
)
def test_the_offline_deploy_agent_follows_the_tag_and_environment_the_request_names(
    deploy: AgentSpec, model: RecordingModel, request_text: str, tag: str, environment: str
) -> None:
    thread = advance(started(request_text), deploy, model)
    assert thread.pending is not None and thread.pending.call is not None
    assert thread.pending.call.arguments == {"tag": tag, "environment": environment}


def test_the_offline_deploy_agent_says_what_it_deployed_once(
    deploy: AgentSpec, model: RecordingModel
) -> None:
    thread = advance(started("deploy v1.0.0 to production"), deploy, model)
    thread = advance(respond(thread, approved=True), deploy, model)
    [done] = events_of(thread, Done)
    assert done.message == "Done: deployed v1.0.0 to production."
