"""MCP servers' tools as Outerloop tools: policies, validation, failures and reconnection."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.definition import AgentSpec
from agent.events import Context, Error, Origin, ToolResult, Trigger
from agent.loop import advance
from agent.model import ModelCall
from agent.scripted_model import SequenceModel
from agent.thread import Status, Thread, reduce
from agent.tools import NEEDS_APPROVAL, READ_ONLY, InvalidArguments, Policy
from bot.agents.files import load_agent
from bot.mcp import McpError, McpToolset, ServerConfig
from bot.settings import Settings
from tests.mcp.conftest import AgentFolder
from tests.services import REPO, free_port, wait_for


def loaded(folder: Path) -> AgentSpec:
    return load_agent(folder, Settings(approvers=(), tool_approvers={}, request_ttl=None))


def started(text: str, agent: str = "repos") -> Thread:
    trigger = Trigger(text=text, origin=Origin(channel="test", sender="al"))
    return reduce(Thread(id="t1", agent=agent), trigger)


def test_annotations_give_the_default_policy_and_the_agent_file_overrides_win(
    agent_folder: AgentFolder,
) -> None:
    extra = '[mcp.tools.lookup]\npolicy = "needs_approval"\napprovers = ["U0OPS"]\n'
    spec = loaded(agent_folder(extra=extra))
    policies = {tool.name: tool.policy for tool in spec.all_tools()}
    assert policies["lookup"] == Policy(needs_approval=True, approvers=("U0OPS",))
    assert policies["crash"] == READ_ONLY, "readOnlyHint"
    assert policies["set_label"] == Policy(idempotent=True), "idempotent and not destructive"
    assert policies["delete_repo"] == NEEDS_APPROVAL, "destructive"
    assert policies["explode"] == NEEDS_APPROVAL, "no annotations: approval"


def test_include_and_exclude_choose_the_tools(agent_folder: AgentFolder) -> None:
    spec = loaded(agent_folder(extra='include = ["lookup", "delete_repo"]\nexclude = ["delete_repo"]'))
    assert [tool.name for tool in spec.all_tools()] == ["lookup", "request_human_input", "done_for_now"]


def test_arguments_are_checked_against_the_servers_schema_before_any_call(
    agent_folder: AgentFolder, effects: Path
) -> None:
    tool = loaded(agent_folder()).tool("set_label")
    assert tool is not None
    with pytest.raises(InvalidArguments, match="issue: 'soon' is not of type 'integer'"):
        tool.validate({"issue": "soon", "label": "bug"})
    assert tool.schema()["input_schema"]["required"] == ["issue", "label"]
    assert tool.run(tool.validate({"issue": 7, "label": "bug"})) == '{"issue": 7, "label": "bug"}'
    assert effects.read_text().splitlines() == ["set_label 7 bug"]


def test_a_failing_tool_and_a_killed_server_are_errors_the_model_sees_and_the_next_call_reconnects(
    agent_folder: AgentFolder, effects: Path
) -> None:
    spec = loaded(agent_folder(extra='[mcp.tools.explode]\npolicy = "safe"'))
    model = SequenceModel(
        [
            ModelCall("explode", {"reason": "on purpose"}),
            ModelCall("crash", {}),
            ModelCall("lookup", {"key": "k"}),
            ModelCall("done_for_now", {"message": "ok"}),
        ]
    )
    thread = advance(started("go"), spec, model)
    assert thread.status is Status.DONE
    errors = [e for e in thread.events if isinstance(e, Error)]
    assert [(e.source, e.tool) for e in errors] == [("tool", "explode"), ("tool", "crash")]
    assert "exploded: on purpose" in errors[0].message
    assert "Connection closed" in errors[1].message
    [result] = [e for e in thread.events if isinstance(e, ToolResult)]
    assert result.tool == "lookup" and "value of k" in result.output
    assert effects.read_text().splitlines() == ["crash", "lookup k"]


def test_a_new_tool_appears_after_the_server_says_the_list_changed(agent_folder: AgentFolder) -> None:
    spec = loaded(agent_folder())
    assert spec.tool("grown") is None
    grow = spec.tool("grow")
    assert grow is not None and grow.run(grow.validate({})) == '{"result": "grew"}'
    wait_for(lambda: spec.tool("grown"), "the refreshed tool list")


def test_prefetch_reads_a_resource_and_a_read_only_tool_but_never_a_destructive_one(
    agent_folder: AgentFolder, effects: Path
) -> None:
    extra = (
        '[[prefetch]]\nmcp = "repos"\nresource = "notes://today"\n'
        '[[prefetch]]\nmcp = "repos"\ntool = "lookup"\narguments = { key = "freeze" }\n'
        '[[prefetch]]\nmcp = "repos"\ntool = "delete_repo"\narguments = { name = "prod" }\n'
    )
    spec = loaded(agent_folder(extra=extra))
    thread = advance(started("go"), spec, SequenceModel([ModelCall("done_for_now", {"message": "ok"})]))
    contexts = [e for e in thread.events if isinstance(e, Context)]
    assert [(c.name, c.content) for c in contexts] == [
        ("repos:notes://today", "deploy freeze until noon"),
        ("repos.lookup", '{"result": "value of freeze"}'),
    ]
    [error] = [e for e in thread.events if isinstance(e, Error)]
    assert "read-only" in error.message
    assert effects.read_text().splitlines() == ["lookup freeze"], "delete_repo never ran"


class HttpServer:
    """The test server over streamable HTTP on loopback, which a test may kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.mcp.server", "http", str(self.port)],
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, "the MCP HTTP server")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def _answers(self) -> bool:
        try:
            httpx.get(self.url, timeout=1)
        except httpx.TransportError:
            return False
        return True


@pytest.fixture
def http_server(effects: Path) -> Iterator[HttpServer]:
    server = HttpServer()
    server.start()
    yield server
    server.kill()


def test_a_streamable_http_server_works_and_is_reconnected_after_a_restart(
    http_server: HttpServer, effects: Path
) -> None:
    toolset = McpToolset(ServerConfig(name="web", url=http_server.url, headers={"X-Test": "1"}, timeout=3))
    lookup = toolset.tool("lookup")
    assert lookup.run(lookup.validate({"key": "a"})) == '{"result": "value of a"}'
    http_server.kill()
    with pytest.raises(McpError):
        lookup.run(lookup.validate({"key": "b"}))
    http_server.start()
    assert lookup.run(lookup.validate({"key": "c"})) == '{"result": "value of c"}'
    assert effects.read_text().splitlines() == ["lookup a", "lookup c"]
