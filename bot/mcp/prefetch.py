"""Context fetched from an MCP server before the model's first call (factor 13).

Only what cannot change anything may run unasked: a resource, or a tool whose policy
runs it without approval and allows running it again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.definition import Prefetch
from agent.events import Context
from agent.thread import Thread
from bot.mcp.tools import McpToolset


class NotReadOnly(ValueError):
    """A prefetch names a tool that may change something."""


def tool_prefetch(toolset: McpToolset, tool: str, arguments: Mapping[str, Any]) -> Prefetch:
    def fetch(thread: Thread) -> Context:
        found = toolset.tool(tool)
        if found.policy.needs_approval or not found.policy.idempotent:
            raise NotReadOnly(
                f"prefetch may only use read-only tools; {toolset.name}.{tool} is not "
                '(mark it read-only with policy = "read_only" if it is)'
            )
        return Context(name=f"{toolset.name}.{tool}", content=found.run(found.validate(dict(arguments))))

    return fetch


def resource_prefetch(toolset: McpToolset, uri: str) -> Prefetch:
    def fetch(thread: Thread) -> Context:
        return Context(name=f"{toolset.name}:{uri}", content=toolset.read_resource(uri))

    return fetch
