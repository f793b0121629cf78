"""Tools: pydantic models the model fills in, plus a handler and a policy (factors 1 and 4).

The model only ever produces JSON that must validate against a tool's model; what
happens next is decided by ordinary code from the tool's ``Policy``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.events import Expiry

Handler = Callable[[Any], object]
"""Receives the validated arguments model; returns text or anything JSON-serializable."""


@dataclass(frozen=True)
class Policy:
    """What deterministic code must do before and after the tool runs.

    ``needs_approval``: never run without an approval from one of ``approvers``
    (or the agent's approvers when empty). ``idempotent``: safe to run again when
    a worker died mid-call; otherwise an interrupted call goes to a human.
    ``expiry``: the time limit on this tool's approval requests, instead of the agent's.
    ``min_approvals``: how many distinct approvers a call needs (a reject from any rejects).
    ``separate_duties``: the person who started the thread, or wrote the message that led
    to the call, may not approve it. ``standing``: approvers may approve with a standing
    scope (this thread, these exact arguments, this tool for some hours); off by default.
    """

    needs_approval: bool = False
    idempotent: bool = False
    approvers: tuple[str, ...] = ()
    expiry: Expiry | None = None
    min_approvals: int = 1
    separate_duties: bool = True
    standing: bool = False

    def __post_init__(self) -> None:
        if self.min_approvals < 1:
            raise ValueError(f"min_approvals must be at least 1, not {self.min_approvals}")
        if self.standing and self.min_approvals > 1:
            # One person's grant would stand in for the whole quorum on every later call.
            raise ValueError("standing approvals need min_approvals=1: a grant is one person's word")


SAFE = Policy()
READ_ONLY = Policy(idempotent=True)
NEEDS_APPROVAL = Policy(needs_approval=True)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    arguments: type[BaseModel]
    handler: Handler | None = None
    """None for built-ins, which the loop turns into events instead of running."""
    policy: Policy = field(default_factory=Policy)

    def schema(self) -> dict[str, Any]:
        """The tool as the Anthropic Messages API describes tools."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": _input_schema(self.arguments),
        }

    def validate(self, arguments: dict[str, Any]) -> BaseModel:
        """Validate the model's arguments; raises ``InvalidArguments`` with a readable message."""
        try:
            return self.arguments.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidArguments(self.name, exc) from exc

    def run(self, arguments: BaseModel) -> str:
        if self.handler is None:
            raise TypeError(f"built-in tool {self.name} is handled by the loop, not run")
        return render_output(self.handler(arguments))


@cache
def _input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of an arguments model, built once: pydantic rebuilds it on every call,
    which was a third of a step's own cost (``python -m bench``). Treat it as read-only."""
    return model.model_json_schema()


class InvalidArguments(ValueError):
    """The model's arguments did not validate; the message is written for the model to fix."""

    def __init__(self, tool: str, error: ValidationError) -> None:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()
        )
        super().__init__(f"invalid arguments for {tool}: {problems}")
        self.tool = tool
        self.problems: dict[str, str] = {}
        """What is wrong, by the top-level argument it is wrong in (``""`` for the whole call)."""
        for e in error.errors():
            where = str(e["loc"][0]) if e["loc"] else ""
            self.problems.setdefault(where, e["msg"])


def render_output(output: object) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, BaseModel):
        return output.model_dump_json()
    return json.dumps(output, default=str, sort_keys=True)


class RequestHumanInput(BaseModel):
    """Ask a person a question when you lack information or need a judgement call."""

    question: str = Field(description="The question, self-contained: the reader has not seen the thread.")


class DoneForNow(BaseModel):
    """Finish: reply to the person who asked, and wait for anything further."""

    message: str = Field(description="The final reply, in plain language.")


REQUEST_HUMAN_INPUT = Tool(
    name="request_human_input",
    description=(
        "Ask a human a question and wait for the answer. Use it when you lack information "
        "or need a decision no tool can make."
    ),
    arguments=RequestHumanInput,
)
DONE_FOR_NOW = Tool(
    name="done_for_now",
    description="Reply to the requester and finish this piece of work.",
    arguments=DoneForNow,
)
BUILT_INS = (REQUEST_HUMAN_INPUT, DONE_FOR_NOW)
