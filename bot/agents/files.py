"""Agents in files: ``<OUTERLOOP_AGENTS_DIR>/<name>/agent.toml`` + ``prompt.md`` (+ ``script.json``).

Everything a file names is checked when it is loaded (the schema, the prompt, the script,
each Python tool's import), so a mistake stops start-up with one line naming the file, the
field and the fix; MCP servers are only reached when an agent first needs their tools.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from agent.definition import AgentSpec, ModelSettings, Prefetch, Toolset
from agent.events import Expiry
from agent.scripted_model import Script
from agent.tools import Tool
from bot.agents.schema import POLICIES, AgentFile, McpSection, PrefetchSection, ToolSection, expand
from bot.agents.tool_refs import BadReference, python_prefetch, python_tool
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.mcp import McpToolset

AGENT_FILE = "agent.toml"
PROMPT_FILE = "prompt.md"
SCRIPT_FILE = "script.json"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DOCS = 'see the README\'s "Your own agents"'


class AgentFileError(ValueError):
    """An agent folder that cannot be loaded; the message names the file, the field and the fix."""

    def __init__(self, path: Path, field: str, problem: str, fix: str) -> None:
        where = f"{path}: {field}" if field else str(path)
        super().__init__(f"{where}: {problem} ({fix})")


def load_agents_dir(folder: Path, settings: Settings) -> list[AgentSpec]:
    """Every agent in ``folder``: each subfolder holding an ``agent.toml``."""
    return [
        load_agent(child, settings)
        for child in sorted(folder.iterdir())
        if child.is_dir() and not child.name.startswith((".", "_"))
    ]


def load_agent(folder: Path, settings: Settings) -> AgentSpec:
    folder = folder.resolve()  # workers may run elsewhere than where the path was relative to
    path = folder / AGENT_FILE
    if not NAME.match(folder.name):
        fix = "rename the folder: lowercase letters, digits, - and _"
        raise AgentFileError(folder, "", "is not a valid agent name", fix)
    if not path.is_file():
        raise AgentFileError(path, "", "does not exist", f"add it, or move {folder} out of the agents folder")
    file = _parse(path)
    prompt = folder / PROMPT_FILE
    if not prompt.is_file():
        raise AgentFileError(prompt, "", "does not exist", "write the agent's instructions in it")
    script = folder / SCRIPT_FILE
    if script.is_file():
        try:
            Script.model_validate_json(script.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise _invalid(script, exc.errors()[0], 'see "The script format" in the README') from exc
    toolsets = {server.name: _toolset(path, index, server) for index, server in enumerate(file.mcp)}
    return AgentSpec(
        name=folder.name,
        description=file.description,
        prompt=prompt,
        tools=tuple(_tool(path, index, entry, settings) for index, entry in enumerate(file.tools)),
        approvers=settings.approvers if file.approvers is None else file.approvers,
        prefetch=tuple(_prefetch(path, index, entry, toolsets) for index, entry in enumerate(file.prefetch)),
        error_limit=file.error_limit,
        context_budget=file.context_budget,
        step_limit=file.step_limit,
        script=script if script.is_file() else None,
        expiry=file.expiry or settings_expiry(settings),
        toolsets=tuple[Toolset, ...](toolsets.values()),
        model=ModelSettings(file.model.name, file.model.max_tokens, file.model.sampling()),
    )


def settings_expiry(settings: Settings) -> Expiry | None:
    """The time limit ``OUTERLOOP_REQUEST_*`` puts on requests of agents whose file sets none."""
    if settings.request_ttl is None:
        return None
    return Expiry(
        wait=timedelta(seconds=settings.request_ttl),
        reminders=settings.request_reminders,
        escalate_to=settings.escalation_approvers,
    )


def _parse(path: Path) -> AgentFile:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AgentFileError(path, "", f"is not valid TOML: {exc}", "fix the syntax") from exc
    try:
        return AgentFile.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(path, exc.errors()[0], DOCS) from exc


def _invalid(path: Path, error: ErrorDetails, docs: str) -> AgentFileError:
    field = ".".join(str(part) for part in error["loc"])
    fixes = {"extra_forbidden": "remove it or fix its spelling", "missing": "add it"}
    return AgentFileError(path, field, error["msg"], f"{fixes.get(error['type'], 'fix the value')}; {docs}")


def _tool(path: Path, index: int, entry: ToolSection, settings: Settings) -> Tool:
    policy = replace(POLICIES[entry.policy or "needs_approval"], **entry.approval_rules())
    if entry.approvers:
        policy = replace(policy, approvers=entry.approvers)
    try:
        tool = python_tool(entry.function, policy, entry.name, entry.description)
    except BadReference as exc:
        field = f"tools.{index}.function"
        raise AgentFileError(path, field, str(exc), "name an importable function") from exc
    if tool.name in settings.tool_approvers:
        tool = replace(tool, policy=replace(tool.policy, approvers=settings.tool_approvers[tool.name]))
    return tool


def _toolset(path: Path, index: int, server: McpSection) -> McpToolset:
    from bot.mcp import McpToolset, ServerConfig, ToolRule  # the MCP SDK only for agents that use it

    try:
        config = ServerConfig(
            name=server.name,
            command=expand(server.command) if server.command else None,
            args=tuple(expand(arg) for arg in server.args),
            env={name: expand(value) for name, value in server.env.items()},
            cwd=str(path.parent),
            url=expand(server.url) if server.url else None,
            headers={name: expand(value) for name, value in server.headers.items()},
            timeout=server.timeout,
        )
    except KeyError as exc:
        fix = f"set {exc.args[0]}, or stop referring to it"
        raise AgentFileError(path, f"mcp.{index}", f"${{{exc.args[0]}}} is not set", fix) from exc
    rules = {
        name: ToolRule(
            replace(POLICIES[rule.policy], **rule.approval_rules()) if rule.policy else None, rule.approvers
        )
        for name, rule in server.tools.items()
    }
    return McpToolset(config, server.include, server.exclude, rules)


def _prefetch(path: Path, index: int, entry: PrefetchSection, toolsets: dict[str, McpToolset]) -> Prefetch:
    if entry.function is not None:
        try:
            return python_prefetch(entry.function)
        except BadReference as exc:
            field = f"prefetch.{index}.function"
            raise AgentFileError(path, field, str(exc), "name an importable function") from exc
    from bot.mcp import resource_prefetch, tool_prefetch

    toolset = toolsets[entry.mcp or ""]
    if entry.tool is not None:
        return tool_prefetch(toolset, entry.tool, entry.arguments)
    return resource_prefetch(toolset, entry.resource or "")
