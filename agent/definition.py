"""Small, focused agents (factor 10): a name, a prompt file, a few tools and a policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.events import Context, Expiry
from agent.thread import Thread
from agent.tools import BUILT_INS, Tool

Prefetch = Callable[[Thread], Context | None]
"""Deterministic code that adds context before the model's first call (factor 13)."""


class AgentCannotRun(RuntimeError):
    """The agent lacks something it needs to run at all (a model, its prompt, a tool server);
    the message says what, for a person to fix. The runtime fails the thread with it."""


class Toolset(Protocol):
    """Tools an agent gets from elsewhere (an MCP server), known only once it is reached."""

    name: str

    def tools(self) -> tuple[Tool, ...]:
        """The tools as they are now; raises ``AgentCannotRun`` if they cannot be had at all."""
        ...


@dataclass(frozen=True)
class ModelSettings:
    """Which model answers an agent, and how (the Messages API's parameters)."""

    name: str | None = None
    """None: ``OUTERLOOP_MODEL``."""
    max_tokens: int | None = None
    sampling: Mapping[str, Any] = field(default_factory=dict)
    """Further Messages API parameters: temperature, top_p, top_k, stop_sequences."""


@dataclass(frozen=True)
class AgentSpec:
    name: str
    description: str
    prompt: Path
    """The agent's instructions: a file, so it can be read, reviewed and tested (factor 2)."""
    tools: tuple[Tool, ...] = ()
    approvers: tuple[str, ...] = ()
    """Who may answer this agent's requests when a tool names none; empty means anyone."""
    prefetch: tuple[Prefetch, ...] = ()
    error_limit: int = 3
    """Consecutive errors before the agent stops retrying and asks a human (factor 9)."""
    context_budget: int = 6000
    """Tokens the rendered events may take before old, resolved events are compacted."""
    step_limit: int = 20
    """Steps one run of the loop may take before it yields."""
    script: Path | None = None
    """Canned decisions for the scripted model, for offline runs without an LLM."""
    expiry: Expiry | None = None
    """How long this agent's human requests wait, and who is reminded or asked next when
    nobody answers (a tool's policy may override it); None: they wait until answered."""
    toolsets: tuple[Toolset, ...] = ()
    """Tools read from servers when first needed, after ``tools``."""
    model: ModelSettings = field(default_factory=ModelSettings)

    def __post_init__(self) -> None:
        names = [tool.name for tool in (*self.tools, *BUILT_INS)]  # a toolset is not reached here
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"agent {self.name}: duplicate tool names {sorted(duplicates)}")

    def all_tools(self) -> tuple[Tool, ...]:
        served = tuple(tool for toolset in self.toolsets for tool in toolset.tools())
        return (*self.tools, *served, *BUILT_INS)

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.all_tools() if t.name == name), None)

    def instructions(self) -> str:
        return self.prompt.read_text(encoding="utf-8")

    def ensure_runnable(self) -> None:
        """Raise ``AgentCannotRun`` naming what is missing: the prompt file or a tool server."""
        if not self.prompt.is_file():
            raise AgentCannotRun(
                f"agent {self.name} cannot run: its prompt file does not exist ({self.prompt}); "
                "write the agent's instructions there"
            )
        self.all_tools()

    def approvers_for(self, tool: Tool | None) -> tuple[str, ...]:
        if tool is not None and tool.policy.approvers:
            return tool.policy.approvers
        return self.approvers

    def expiry_for(self, tool: Tool | None) -> Expiry | None:
        if tool is not None and tool.policy.expiry is not None:
            return tool.policy.expiry
        return self.expiry


class UnknownAgent(LookupError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"no agent named {name!r}; known agents: {', '.join(sorted(known)) or 'none'}")


class Registry:
    """The agents a deployment offers, by name."""

    def __init__(self, agents: Iterable[AgentSpec] = ()) -> None:
        self._agents: dict[str, AgentSpec] = {}
        for spec in agents:
            self.register(spec)

    def register(self, spec: AgentSpec) -> None:
        if spec.name in self._agents:
            raise ValueError(f"agent {spec.name!r} is registered twice")
        self._agents[spec.name] = spec

    def get(self, name: str) -> AgentSpec:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(name, self._agents) from None

    def __iter__(self) -> Iterator[AgentSpec]:
        return iter(self._agents.values())

    def __contains__(self, name: object) -> bool:
        return name in self._agents
