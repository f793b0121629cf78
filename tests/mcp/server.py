"""A local MCP server for tests, built with the ``mcp`` package's FastMCP.

``python -m tests.mcp.server stdio`` or ``python -m tests.mcp.server http PORT``. Every tool
that runs appends a line to the file ``MCP_EFFECTS`` names, so tests count effects from outside.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations


def _effect(line: str) -> None:
    with Path(os.environ["MCP_EFFECTS"]).open("a", encoding="utf-8") as effects:
        effects.write(line + "\n")


def build(port: int = 0) -> FastMCP:
    server = FastMCP("test-tools", host="127.0.0.1", port=port)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def lookup(key: str) -> str:
        """Look a key up."""
        _effect(f"lookup {key}")
        return f"value of {key}"

    @server.tool(annotations=ToolAnnotations(idempotentHint=True, destructiveHint=False))
    def set_label(issue: int, label: str) -> dict[str, object]:
        """Set a label on an issue."""
        _effect(f"set_label {issue} {label}")
        return {"issue": issue, "label": label}

    @server.tool(annotations=ToolAnnotations(destructiveHint=True))
    def delete_repo(name: str) -> str:
        """Delete a repository."""
        _effect(f"delete_repo {name}")
        return f"deleted {name}"

    @server.tool()
    def explode(reason: str) -> str:
        """Fail on purpose."""
        raise ValueError(f"exploded: {reason}")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def crash() -> str:
        """Kill the server mid-call."""
        _effect("crash")
        os._exit(1)

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    async def grow(ctx: Context) -> str:  # type: ignore[type-arg]
        """Add a tool, and tell the client the list changed."""

        @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
        def grown() -> str:
            """A tool that was not there at first."""
            return "grown"

        await ctx.session.send_tool_list_changed()
        return "grew"

    @server.resource("notes://today")
    def today() -> str:
        return "deploy freeze until noon"

    return server


if __name__ == "__main__":
    if sys.argv[1] == "http":
        build(int(sys.argv[2])).run(transport="streamable-http")
    else:
        build().run(transport="stdio")
