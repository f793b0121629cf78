"""What an ``agent.toml`` may say: the file's schema, strict so a typo is an error, not a default."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.events import Expiry
from agent.tools import NEEDS_APPROVAL, READ_ONLY, SAFE, Policy

POLICIES: dict[str, Policy] = {
    "read_only": READ_ONLY,
    "idempotent": Policy(idempotent=True),
    "safe": SAFE,
    "needs_approval": NEEDS_APPROVAL,
}
"""Policy names a file may use. ``read_only`` and ``idempotent`` run unasked and may run again
after a crash; ``safe`` runs unasked but a crash mid-call goes to a human; ``needs_approval``
never runs without a person's yes."""
APPROVAL_RULES = ("min_approvals", "separate_duties", "standing")
"""What a needs-approval tool's section may say about its approvals (see ``agent.tools.Policy``)."""
PolicyName = Literal["read_only", "idempotent", "safe", "needs_approval"]
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Strict):
    name: str | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    top_k: Annotated[int, Field(ge=1)] | None = None
    stop_sequences: list[str] | None = None

    def sampling(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "max_tokens"}, exclude_none=True)


class ApprovalRules(_Strict):
    """What a needs-approval tool's section may say about its approvals (``agent.tools.Policy``)."""

    policy: PolicyName | None = None
    min_approvals: Annotated[int, Field(ge=1, le=20, strict=True)] | None = None
    """How many distinct approvers a call needs; None: one."""
    separate_duties: Annotated[bool, Field(strict=True)] | None = None
    """Whether who asked for a call is kept from approving it; None: yes."""
    standing: Annotated[bool, Field(strict=True)] | None = None
    """Whether approvers may approve with a standing scope; None: no."""

    @model_validator(mode="after")
    def _approval_rules_fit(self) -> ApprovalRules:
        named = [rule for rule in APPROVAL_RULES if getattr(self, rule) is not None]
        if named and self.policy != "needs_approval":
            raise ValueError(f'{" and ".join(named)} only apply to policy = "needs_approval"')
        if self.standing and (self.min_approvals or 1) > 1:
            raise ValueError(
                "standing = true needs min_approvals = 1: a standing approval is one person's word"
            )
        return self

    def approval_rules(self) -> dict[str, Any]:
        """The ``Policy`` fields this section sets, to replace in its named policy."""
        return {rule: getattr(self, rule) for rule in APPROVAL_RULES if getattr(self, rule) is not None}


class ToolSection(ApprovalRules):
    function: str = Field(pattern=r"^[\w.]+:\w+$")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    policy: PolicyName | None = "needs_approval"
    approvers: tuple[str, ...] = ()


class ToolRuleSection(ApprovalRules):
    """An MCP tool's overrides; approval rules need ``policy = "needs_approval"`` said here."""

    approvers: tuple[str, ...] = ()


def expand(value: str) -> str:
    """``${NAME}`` replaced by the environment variable; raises ``KeyError`` naming it if unset."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(name)
        return os.environ[name]

    return _ENV_REFERENCE.sub(lookup, value)


class McpSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Annotated[float, Field(gt=0)] = 30.0
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tools: dict[str, ToolRuleSection] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_transport(self) -> McpSection:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (a stdio server) or url (streamable HTTP), not both")
        return self


class PrefetchSection(_Strict):
    function: str | None = Field(default=None, pattern=r"^[\w.]+:\w+$")
    mcp: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    resource: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PrefetchSection:
        from_mcp = self.mcp is not None or self.tool is not None or self.resource is not None
        one_mcp_source = self.mcp is not None and (self.tool is None) != (self.resource is None)
        if (self.function is not None) == from_mcp or (from_mcp and not one_mcp_source):
            raise ValueError("give either function, or mcp with one of tool or resource")
        return self


class AgentFile(_Strict):
    description: str
    approvers: tuple[str, ...] | None = None
    """None: ``OUTERLOOP_APPROVERS``."""
    model: ModelSection = Field(default_factory=ModelSection)
    expiry: Expiry | None = None
    """None: ``OUTERLOOP_REQUEST_TTL`` and friends."""
    step_limit: Annotated[int, Field(ge=1)] = 20
    error_limit: Annotated[int, Field(ge=1)] = 3
    context_budget: Annotated[int, Field(ge=500)] = 6000
    tools: list[ToolSection] = Field(default_factory=list)
    mcp: list[McpSection] = Field(default_factory=list)
    prefetch: list[PrefetchSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _prefetch_names_a_server(self) -> AgentFile:
        servers = {server.name for server in self.mcp}
        for entry in self.prefetch:
            if entry.mcp is not None and entry.mcp not in servers:
                raise ValueError(f"prefetch names MCP server {entry.mcp!r}, which no [[mcp]] defines")
        return self
