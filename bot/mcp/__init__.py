"""Tools and context from MCP servers, run under Outerloop's approval policies."""

from bot.mcp.connection import McpError, ServerConfig, ServerUnavailable
from bot.mcp.prefetch import resource_prefetch, tool_prefetch
from bot.mcp.tools import McpToolset, ToolFailed, ToolRule, default_policy

__all__ = [
    "McpError",
    "McpToolset",
    "ServerConfig",
    "ServerUnavailable",
    "ToolFailed",
    "ToolRule",
    "default_policy",
    "resource_prefetch",
    "tool_prefetch",
]
