"""Tools and agent definitions: schemas from pydantic, readable argument errors, name clashes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.definition import Registry, UnknownAgent
from agent.tools import BUILT_INS, DONE_FOR_NOW, InvalidArguments, Tool
from bot.agents.deploy import Deploy, ListTags
from tests.kernel_helpers import CountingTool, make_spec


def returns(value: object) -> Tool:
    """A tool whose handler returns ``value``."""

    class Nothing(BaseModel):
        pass

    return Tool("give", "Give a value.", Nothing, lambda _: value)


def test_the_schema_names_and_describes_the_tool() -> None:
    schema = Tool("list_tags", "List the git tags, newest first.", ListTags).schema()
    assert schema["name"] == "list_tags"
    assert schema["description"] == "List the git tags, newest first."
    assert schema["input_schema"]["type"] == "object"
    assert schema["input_schema"]["description"] == "List the repository's git tags, newest first."


def test_the_input_schema_carries_field_descriptions_and_constraints() -> None:
    list_tags = Tool("list_tags", "List tags.", ListTags).schema()["input_schema"]
    deploy = Tool("deploy", "Deploy a tag.", Deploy).schema()["input_schema"]

    limit = list_tags["properties"]["limit"]
    assert (limit["type"], limit["minimum"], limit["maximum"], limit["default"]) == ("integer", 1, 100, 10)
    assert limit["description"] == "How many tags to return."
    assert "required" not in list_tags
    assert deploy["properties"]["tag"]["pattern"] == r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
    assert deploy["properties"]["environment"]["enum"] == ["staging", "production"]
    assert sorted(deploy["required"]) == ["environment", "tag"]


def test_built_in_tools_describe_their_arguments_for_the_model() -> None:
    schemas = {tool.name: tool.schema()["input_schema"] for tool in BUILT_INS}
    assert "self-contained" in schemas["request_human_input"]["properties"]["question"]["description"]
    assert schemas["done_for_now"]["required"] == ["message"]


@pytest.mark.parametrize(
    ("arguments", "problems"),
    [
        ({}, ["tag: Field required", "environment: Field required"]),
        ({"tag": "v1", "environment": "moon"}, ["environment: Input should be 'staging' or 'production'"]),
        ({"tag": "-rf /", "environment": "staging"}, ["tag: String should match pattern"]),
    ],
)
def test_invalid_arguments_name_the_field_and_the_problem(
    arguments: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(InvalidArguments) as raised:
        Tool("deploy", "Deploy a tag.", Deploy).validate(arguments)
    assert raised.value.tool == "deploy"
    message = str(raised.value)
    assert message.startswith("invalid arguments for deploy: ")
    assert all(problem in message for problem in problems), message


def test_invalid_nested_arguments_name_the_path_to_the_field() -> None:
    class Batch(BaseModel):
        sizes: list[int]

    with pytest.raises(InvalidArguments, match=r"sizes\.1: Input should be a valid integer"):
        Tool("batch", "Run a batch.", Batch).validate({"sizes": [1, "two"]})


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain text", "plain text"),
        ({"b": 2, "a": [1]}, '{"a": [1], "b": 2}'),
        (ListTags(limit=3), '{"limit":3}'),
    ],
)
def test_tool_output_becomes_text(value: object, output: str) -> None:
    tool = returns(value)
    assert tool.run(tool.validate({})) == output


def test_built_in_tools_are_not_run_by_the_tool() -> None:
    with pytest.raises(TypeError, match="built-in tool done_for_now is handled by the loop"):
        DONE_FOR_NOW.run(DONE_FOR_NOW.validate({"message": "bye"}))


@pytest.mark.parametrize("clash", ["lookup", "done_for_now"])
def test_duplicate_tool_names_in_an_agent_raise(tmp_path: Path, clash: str) -> None:
    with pytest.raises(ValueError, match=rf"agent test: duplicate tool names \['{clash}'\]"):
        make_spec(tmp_path, CountingTool("lookup"), CountingTool(clash))


def test_an_unknown_agent_error_lists_the_known_agents(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    registry = Registry([replace(spec, name="deploy"), replace(spec, name="triage")])
    with pytest.raises(UnknownAgent, match=r"no agent named 'deplyo'; known agents: deploy, triage"):
        registry.get("deplyo")
    with pytest.raises(UnknownAgent, match=r"known agents: none"):
        Registry().get("deploy")


def test_an_agent_name_registered_twice_raises(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    with pytest.raises(ValueError, match=r"agent 'test' is registered twice"):
        Registry([spec, spec])
