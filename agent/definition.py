"""Small, focused agents (factor 10): a name, a prompt file, a few tools and a policy."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.events import Context, Expiry
from agent.thread import Thread
from agent.tools import BUILT_INS, Tool

Prefetch = Callable[[Thread], Context | None]
"""Deterministic code that adds context before the model's first call (factor 13)."""


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

    def __post_init__(self) -> None:
        names = [tool.name for tool in self.all_tools()]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"agent {self.name}: duplicate tool names {sorted(duplicates)}")

    def all_tools(self) -> tuple[Tool, ...]:
        return (*self.tools, *BUILT_INS)

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.all_tools() if t.name == name), None)

    def instructions(self) -> str:
        return self.prompt.read_text(encoding="utf-8")

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
