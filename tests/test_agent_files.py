"""Agents in files: what a folder holds becomes an ``AgentSpec``; a mistake names file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.tools import READ_ONLY, Policy
from bot.agents import BUNDLED
from bot.agents.files import AgentFileError, load_agent
from bot.settings import Settings

GOOD = """\
description = "It measures things."
approvers = ["U0ALICE"]
step_limit = 5

[model]
name = "claude-test"
max_tokens = 200
temperature = 0.1

[expiry]
wait = 60
reminders = 1

[[tools]]
function = "tests.test_agent_files:measure"
policy = "read_only"
"""


def measure(path: str, depth: int = 1) -> str:
    """Measure a directory."""
    return f"{path} at depth {depth}"


def folder_with(tmp_path: Path, toml: str, prompt: bool = True) -> Path:
    folder = tmp_path / "measurer"
    folder.mkdir()
    (folder / "agent.toml").write_text(toml)
    if prompt:
        (folder / "prompt.md").write_text("Measure.")
    return folder


def test_a_folder_becomes_an_agent_with_its_model_expiry_and_python_tools(tmp_path: Path) -> None:
    spec = load_agent(folder_with(tmp_path, GOOD), Settings())
    assert (spec.name, spec.approvers, spec.step_limit) == ("measurer", ("U0ALICE",), 5)
    assert (spec.model.name, spec.model.max_tokens, dict(spec.model.sampling)) == (
        "claude-test",
        200,
        {"temperature": 0.1},
    )
    assert spec.expiry is not None and spec.expiry.reminders == 1
    tool = spec.tool("measure")
    assert tool is not None and tool.policy == READ_ONLY and tool.description == "Measure a directory."
    assert tool.run(tool.validate({"path": "/srv"})) == "/srv at depth 1"
    assert tool.schema()["input_schema"]["required"] == ["path"]


def test_the_bundled_deploy_agent_is_an_agent_in_files() -> None:
    settings = Settings(tool_approvers={"deploy": ("S0OPS",)})
    spec = load_agent(BUNDLED / "deploy", settings)
    deploy = spec.tool("deploy")
    assert deploy is not None and deploy.policy == Policy(needs_approval=True, approvers=("S0OPS",))
    assert spec.script == BUNDLED / "deploy" / "script.json"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (GOOD + "colour = 1\n", "agent.toml: tools.0.colour: Extra inputs are not permitted (remove it"),
        (GOOD.replace('description = "It measures things."', ""), "agent.toml: description: Field required"),
        (GOOD.replace("tests.test_agent_files:", "nowhere:"), "tools.0.function: cannot import"),
        (GOOD.replace("max_tokens = 200", "max_tokens = 0"), "agent.toml: model.max_tokens: Input should"),
        (GOOD + '[[mcp]]\nname = "x"\n', "agent.toml: mcp.0: Value error, give either command"),
        (GOOD + '[[mcp]]\nname = "x"\nurl = "${NO_SUCH_VARIABLE}"\n', "${NO_SUCH_VARIABLE} is not set"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_the_field_and_the_fix(
    tmp_path: Path, toml: str, expected: str
) -> None:
    with pytest.raises(AgentFileError) as raised:
        load_agent(folder_with(tmp_path, toml), Settings())
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_prompt_is_named_at_load(tmp_path: Path) -> None:
    with pytest.raises(AgentFileError, match=r"prompt.md: does not exist \(write the agent's instructions"):
        load_agent(folder_with(tmp_path, GOOD, prompt=False), Settings())
