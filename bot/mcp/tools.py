"""An MCP server's tools as Outerloop tools, under Outerloop's approval policies.

The server says what its tools are called, what arguments they take (a JSON schema) and,
through annotations, how careful to be with them; Outerloop decides. Annotations give the
default policy: ``readOnlyHint`` runs freely, ``idempotentHint`` on a tool that declares
itself not destructive runs freely and may be re-run after a crash, anything else needs a
human's approval. An agent file's per-tool ``policy`` and ``approvers`` win over that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import structlog
from jsonschema import validators
from mcp import ClientSession
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ResourceLink,
    TextContent,
    TextResourceContents,
    ToolAnnotations,
)
from mcp.types import Tool as ListedTool
from pydantic import AnyUrl, BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from agent.definition import AgentCannotRun
from agent.tools import BUILT_INS, NEEDS_APPROVAL, READ_ONLY, Policy, Tool
from bot.mcp.connection import Connection, McpError, ServerConfig

log = structlog.get_logger(__name__)


class ToolFailed(RuntimeError):
    """The server ran the tool and reported an error (``isError``); the message is its text."""


@dataclass(frozen=True)
class ToolRule:
    """An agent file's word on one tool: its policy and who approves it, instead of the server's."""

    policy: Policy | None = None
    approvers: tuple[str, ...] = ()


def default_policy(annotations: ToolAnnotations | None) -> Policy:
    """The policy a tool's annotations suggest; unannotated tools need approval."""
    hints = annotations or ToolAnnotations()
    if hints.readOnlyHint:
        return READ_ONLY
    if hints.idempotentHint and hints.destructiveHint is False:
        return Policy(idempotent=True)
    return replace(NEEDS_APPROVAL, idempotent=bool(hints.idempotentHint))


class McpArguments(BaseModel):
    """Arguments checked against the server's JSON schema before any call."""

    model_config = ConfigDict(extra="allow", frozen=True)
    input_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    @model_validator(mode="before")
    @classmethod
    def _against_schema(cls, data: Any) -> Any:
        validator = validators.validator_for(cls.input_schema)(cls.input_schema)
        problems = sorted(
            f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}".removeprefix(": ")
            for error in validator.iter_errors(data)
        )
        if problems:
            raise PydanticCustomError("json_schema", "{problems}", {"problems": "; ".join(problems)})
        return data


def arguments_model(name: str, schema: Mapping[str, Any]) -> type[McpArguments]:
    return type(f"{name}_arguments", (McpArguments,), {"input_schema": dict(schema)})


@dataclass(frozen=True)
class McpTool(Tool):
    """A tool whose schema is the server's own, passed to the model unchanged."""

    input_schema: Mapping[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": dict(self.input_schema)}


class McpToolset:
    """The tools of one server an agent uses: listed on first need, again after
    ``tools/list_changed``; the last list is kept while the server is away, so a call
    to it fails as an error the model sees instead of the tool vanishing."""

    def __init__(
        self,
        config: ServerConfig,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        rules: Mapping[str, ToolRule] | None = None,
    ) -> None:
        self.name = config.name
        self.include = frozenset(include)
        self.exclude = frozenset(exclude)
        self.rules = dict(rules or {})
        self.connection = Connection(config, self._changed)
        self._tools: tuple[Tool, ...] | None = None
        self._stale = True

    def tools(self) -> tuple[Tool, ...]:
        if self._stale or self._tools is None:
            try:
                listed = self.connection.request(_list_tools)
            except McpError as exc:
                if self._tools is None:
                    raise AgentCannotRun(str(exc)) from exc
                log.warning("mcp.list_failed", server=self.name, error=str(exc))
                return self._tools
            self._stale = False
            self._tools = tuple(self._tool(t) for t in listed if self._wanted(t.name))
        return self._tools

    def tool(self, name: str) -> Tool:
        found = next((t for t in self.tools() if t.name == name), None)
        if found is None:
            raise LookupError(f"MCP server {self.name} offers no tool {name!r}")
        return found

    def read_resource(self, uri: str) -> str:
        result = self.connection.request(lambda session: session.read_resource(AnyUrl(uri)))
        return "\n".join(_resource_text(contents) for contents in result.contents)

    def close(self) -> None:
        self.connection.close()

    def _changed(self) -> None:
        self._stale = True

    def _wanted(self, name: str) -> bool:
        if name in {t.name for t in BUILT_INS}:
            log.warning("mcp.tool_shadowed", server=self.name, tool=name)
            return False
        return (not self.include or name in self.include) and name not in self.exclude

    def _tool(self, listed: ListedTool) -> Tool:
        rule = self.rules.get(listed.name, ToolRule())
        policy = rule.policy or default_policy(listed.annotations)
        if rule.approvers:
            policy = replace(policy, approvers=rule.approvers)
        return McpTool(
            name=listed.name,
            description=listed.description or listed.title or listed.name,
            arguments=arguments_model(listed.name, listed.inputSchema),
            handler=partial(self._call, listed.name),
            policy=policy,
            input_schema=listed.inputSchema,
        )

    def _call(self, name: str, arguments: BaseModel) -> str:
        values = arguments.model_dump(mode="json")
        result = self.connection.request(lambda session: session.call_tool(name, values))
        if result.isError:
            raise ToolFailed(render_result(result) or f"{name} failed without saying why")
        return render_result(result)


async def _list_tools(session: ClientSession) -> list[ListedTool]:
    listed: list[ListedTool] = []
    cursor: str | None = None
    while True:
        page = await session.list_tools(cursor)
        listed.extend(page.tools)
        cursor = page.nextCursor
        if cursor is None:
            return listed


def render_result(result: CallToolResult) -> str:
    """A tool's result as text for the thread. Structured content, when given, is the result
    (servers repeat it as a text block only for older clients); else the text blocks. Other
    blocks are named, not inlined."""
    if result.structuredContent is None:
        return "\n".join(_block_text(block) for block in result.content)
    others = [_block_text(block) for block in result.content if not isinstance(block, TextContent)]
    return "\n".join([json.dumps(result.structuredContent, sort_keys=True, ensure_ascii=False), *others])


def _block_text(block: object) -> str:
    match block:
        case TextContent(text=text):
            return text
        case EmbeddedResource(resource=resource):
            return _resource_text(resource)
        case ResourceLink(uri=uri, name=name):
            return f"[resource {name}: {uri}]"
        case _:
            mime = getattr(block, "mimeType", "")
            return f"[{getattr(block, 'type', 'content')} {mime}, not shown]".replace(" ,", ",")


def _resource_text(contents: TextResourceContents | BlobResourceContents) -> str:
    if isinstance(contents, TextResourceContents):
        return contents.text
    return f"[{contents.mimeType or 'binary'} resource {contents.uri}, not shown]"
