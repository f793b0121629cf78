"""``AnthropicModel`` against a local server playing the Messages API, alone and in the loop.

The real ``anthropic`` client talks HTTP to ``FakeAnthropic``; nothing of ours or the
SDK's is mocked. Retries stay fast because error replies carry ``retry-after-ms``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from agent.anthropic_model import DEFAULT_MODEL, AnthropicModel
from agent.context import system_prompt, user_prompt
from agent.definition import AgentSpec
from agent.events import (
    Error,
    HumanRequest,
    ModelDecided,
    ModelRequested,
    Origin,
    ToolCall,
    ToolResult,
    Trigger,
)
from agent.loop import advance
from agent.model import ModelCall, ModelOutputInvalid, ModelRequest, ModelUnavailable
from agent.thread import Status, Thread, reduce
from agent.tools import NEEDS_APPROVAL, READ_ONLY, Tool
from tests.fake_anthropic import (
    RETRY_NOW,
    FakeAnthropic,
    RecordedRequest,
    Reply,
    error_reply,
    message,
    overloaded_reply,
    text_reply,
    tool_use_block,
    tool_use_reply,
)

API_KEY = "sk-ant-test-key"
MAX_RETRIES = 2
REQUEST = ModelRequest(
    system="You keep services running.",
    context='<cli_message from="ana">is the api up?</cli_message>',
    tools=[],
    thread=Thread(id="t1", agent="ops"),
)
"""For tests of the model alone: the fake server answers whatever was asked."""


class LookUpService(BaseModel):
    """Show a service's status and its latest log lines."""

    name: str = Field(description="The service name.")
    lines: int = Field(ge=1, le=50, description="How many log lines to show.")


class RestartService(BaseModel):
    """Restart a service. Needs a human's approval."""

    name: str = Field(description="The service name.")


@dataclass
class Ops:
    """The test agent's tool handlers; they record every call that actually ran."""

    ran: list[BaseModel] = field(default_factory=list)

    def look_up_service(self, arguments: LookUpService) -> str:
        self.ran.append(arguments)
        return f"{arguments.name}: down since 10:02"

    def restart_service(self, arguments: RestartService) -> str:
        self.ran.append(arguments)
        return f"{arguments.name} restarted"


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def model(fake: FakeAnthropic) -> AnthropicModel:
    return AnthropicModel(api_key=API_KEY, base_url=fake.base_url, max_retries=MAX_RETRIES)


@pytest.fixture
def ops() -> Ops:
    return Ops()


@pytest.fixture
def agent(tmp_path: Path, ops: Ops) -> AgentSpec:
    prompt = tmp_path / "ops.md"
    prompt.write_text("Look at a service before you restart it.\n", encoding="utf-8")
    return AgentSpec(
        name="ops",
        description="Keeps our services running.",
        prompt=prompt,
        tools=(
            Tool("look_up_service", "Show a service.", LookUpService, ops.look_up_service, READ_ONLY),
            Tool(
                "restart_service", "Restart a service.", RestartService, ops.restart_service, NEEDS_APPROVAL
            ),
        ),
    )


def started(text: str = "the api is down, fix it") -> Thread:
    return reduce(
        Thread(id="t1", agent="ops"), Trigger(text=text, origin=Origin(channel="cli", sender="ana"))
    )


def sent_api_key(request: RecordedRequest) -> str | None:
    """The key as the SDK sends it: a bearer token from SDK 2.x, ``x-api-key`` before."""
    bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
    return request.headers.get("x-api-key") or bearer or None


def last_error(thread: Thread) -> Error:
    event = thread.events[-1]
    assert isinstance(event, Error), f"expected an error event last, got {event!r}"
    return event


def test_tool_use_response_becomes_a_model_call(fake: FakeAnthropic, model: AnthropicModel) -> None:
    fake.script(tool_use_reply("look_up_service", {"name": "api", "lines": 5}))

    assert model.decide(REQUEST) == ModelCall("look_up_service", {"name": "api", "lines": 5})


def test_request_carries_model_cached_system_prompt_context_tools_and_key(
    fake: FakeAnthropic, agent: AgentSpec
) -> None:
    model = AnthropicModel(api_key=API_KEY, model="claude-test-model", base_url=fake.base_url, max_tokens=512)
    thread = started()
    fake.script(tool_use_reply("look_up_service", {"name": "api", "lines": 5}))

    advance(thread, agent, model, max_steps=1)

    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert sent_api_key(request) == API_KEY
    assert request.body == {
        "model": "claude-test-model",
        "max_tokens": 512,
        "system": [{"type": "text", "text": system_prompt(agent), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": user_prompt(thread, agent.context_budget)}],
        "tools": [tool.schema() for tool in agent.all_tools()],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    schemas = {tool["name"]: tool["input_schema"] for tool in request.body["tools"]}
    assert set(schemas) == {"look_up_service", "restart_service", "request_human_input", "done_for_now"}
    assert schemas["look_up_service"] == LookUpService.model_json_schema()


def test_the_default_model_which_always_thinks_is_asked_without_forcing_a_tool(fake: FakeAnthropic) -> None:
    # Sonnet 5.5 answers 400 to tool_choice any/tool; the fake plays that rule.
    model = AnthropicModel(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    fake.script(tool_use_reply("look_up_service", {"name": "api", "lines": 5}, model=DEFAULT_MODEL))

    assert model.decide(REQUEST) == ModelCall("look_up_service", {"name": "api", "lines": 5})
    assert fake.requests[0].body["model"] == DEFAULT_MODEL


def test_an_answer_in_text_alone_tells_the_model_to_call_a_tool(
    fake: FakeAnthropic, model: AnthropicModel
) -> None:
    fake.script(text_reply("I would look up the api service."))

    with pytest.raises(ModelOutputInvalid, match="answered with text alone: call one of the tools"):
        model.decide(REQUEST)


def test_overloaded_api_is_retried_and_the_retry_succeeds(fake: FakeAnthropic, model: AnthropicModel) -> None:
    fake.script(overloaded_reply(), tool_use_reply("look_up_service", {"name": "api", "lines": 5}))

    assert model.decide(REQUEST).tool == "look_up_service"
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "text"),
    [(529, "overloaded_error", "Overloaded"), (500, "api_error", "Internal server error")],
)
def test_persistent_server_errors_become_unavailable_after_the_retries(
    fake: FakeAnthropic, model: AnthropicModel, status: int, error_type: str, text: str
) -> None:
    fake.script(*[error_reply(status, error_type, text, RETRY_NOW)] * (MAX_RETRIES + 1))

    with pytest.raises(ModelUnavailable, match=f"{status}: {text}"):
        model.decide(REQUEST)
    assert len(fake.requests) == MAX_RETRIES + 1


@pytest.mark.parametrize(
    ("status", "error_type", "text"),
    [
        (401, "authentication_error", "invalid x-api-key"),
        (400, "invalid_request_error", "max_tokens: Field required"),
    ],
)
def test_client_errors_become_unavailable_without_retry(
    fake: FakeAnthropic, model: AnthropicModel, status: int, error_type: str, text: str
) -> None:
    fake.script(error_reply(status, error_type, text))

    with pytest.raises(ModelUnavailable, match=f"{status}: {text}"):
        model.decide(REQUEST)
    assert len(fake.requests) == 1


def test_unreachable_api_becomes_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now. No retries: without a retry-after header the
    # client backs off for half a second or more per attempt.
    model = AnthropicModel(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0)

    with pytest.raises(ModelUnavailable, match="unreachable"):
        model.decide(REQUEST)


@pytest.mark.parametrize(
    "reply",
    [
        text_reply("The api looks down; I would restart it."),
        Reply(
            200,
            message(
                tool_use_block("look_up_service", {"name": "api", "lines": 5}, "toolu_01"),
                tool_use_block("restart_service", {"name": "api"}, "toolu_02"),
            ),
        ),
    ],
    ids=["text only", "two tool calls"],
)
def test_answer_without_exactly_one_tool_call_is_invalid(
    fake: FakeAnthropic, model: AnthropicModel, reply: Reply
) -> None:
    fake.script(reply)

    with pytest.raises(ModelOutputInvalid, match="exactly one tool call"):
        model.decide(REQUEST)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [({"name": "api", "lines": "many"}, "lines"), ({"lines": 5}, "name: Field required")],
    ids=["wrong type", "missing field"],
)
def test_malformed_tool_input_is_an_arguments_error_and_the_thread_keeps_running(
    fake: FakeAnthropic,
    model: AnthropicModel,
    agent: AgentSpec,
    ops: Ops,
    arguments: dict[str, Any],
    problem: str,
) -> None:
    fake.script(tool_use_reply("look_up_service", arguments))

    thread = advance(started(), agent, model, max_steps=1)

    error = last_error(thread)
    assert (error.source, error.tool) == ("arguments", "look_up_service")
    assert problem in error.message
    assert thread.status is Status.RUNNING
    assert ops.ran == []


def test_model_sees_its_arguments_error_and_corrects_itself(
    fake: FakeAnthropic, model: AnthropicModel, agent: AgentSpec, ops: Ops
) -> None:
    fake.script(
        tool_use_reply("look_up_service", {"name": "api"}),
        tool_use_reply("look_up_service", {"name": "api", "lines": 5}),
        tool_use_reply("done_for_now", {"message": "The api is down since 10:02."}),
    )

    thread = advance(started(), agent, model)

    assert thread.status is Status.DONE
    assert ops.ran == [LookUpService(name="api", lines=5)]
    retry_context = fake.requests[1].body["messages"][0]["content"]
    assert '<error source="arguments" tool="look_up_service">' in retry_context


def test_unknown_tool_is_an_arguments_error_naming_the_known_tools(
    fake: FakeAnthropic, model: AnthropicModel, agent: AgentSpec
) -> None:
    fake.script(tool_use_reply("reboot_datacenter", {}))

    thread = advance(started(), agent, model, max_steps=1)

    error = last_error(thread)
    assert error.source == "arguments"
    assert "unknown tool 'reboot_datacenter'" in error.message
    assert "look_up_service" in error.message
    assert thread.status is Status.RUNNING


def test_model_outage_is_a_model_error_in_the_thread(
    fake: FakeAnthropic, model: AnthropicModel, agent: AgentSpec
) -> None:
    fake.script(*[overloaded_reply()] * (MAX_RETRIES + 1))

    thread = advance(started(), agent, model, max_steps=1)

    error = last_error(thread)
    assert error.source == "model"
    assert "529: Overloaded" in error.message
    assert thread.status is Status.RUNNING


def test_three_outages_in_a_row_escalate_to_a_human(
    fake: FakeAnthropic, model: AnthropicModel, agent: AgentSpec
) -> None:
    outages = agent.error_limit
    fake.script(*[overloaded_reply()] * ((MAX_RETRIES + 1) * outages))

    thread = advance(started(), agent, model)

    assert thread.status is Status.AWAITING_HUMAN
    assert [type(e) for e in thread.events] == [Trigger, *[ModelRequested, Error] * outages, HumanRequest]
    assert thread.pending is not None and thread.pending.kind == "question"
    assert "529: Overloaded" in thread.pending.text
    assert len(fake.requests) == (MAX_RETRIES + 1) * outages


def test_safe_tool_runs_but_the_approval_tool_waits_for_a_human(
    fake: FakeAnthropic, model: AnthropicModel, agent: AgentSpec, ops: Ops
) -> None:
    fake.script(
        tool_use_reply("look_up_service", {"name": "api", "lines": 5}),
        tool_use_reply("restart_service", {"name": "api"}),
    )

    thread = advance(started(), agent, model)

    assert thread.status is Status.AWAITING_HUMAN
    assert [type(e) for e in thread.events] == [
        Trigger,
        ModelRequested,
        ModelDecided,
        ToolCall,
        ToolResult,
        ModelRequested,
        ModelDecided,
        HumanRequest,
    ]
    request = thread.pending
    assert request is not None and request.kind == "approval" and request.call is not None
    assert (request.call.tool, request.call.arguments) == ("restart_service", {"name": "api"})
    assert ops.ran == [LookUpService(name="api", lines=5)]
    assert (
        '<tool_result tool="look_up_service">api: down since 10:02</tool_result>'
        in (fake.requests[1].body["messages"][0]["content"])
    )


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "<html><body>Sign in to continue</body></html>", content_type="text/html"),
        Reply(200, {"status": "ok"}),
        Reply(200, "{not json"),
    ],
    ids=["html page", "other json", "broken json"],
)
def test_success_that_is_not_a_message_becomes_unavailable(
    fake: FakeAnthropic, model: AnthropicModel, reply: Reply
) -> None:
    # What a proxy or a wrong ANTHROPIC_BASE_URL may answer.
    fake.script(reply)

    with pytest.raises(ModelUnavailable, match="not a Messages API response"):
        model.decide(REQUEST)
