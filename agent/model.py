"""The model interface: given the rendered context, choose exactly one tool call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from agent.thread import Thread


@dataclass(frozen=True)
class ModelRequest:
    system: str
    """The system prompt; stable across a thread's calls, so providers can cache it."""
    context: str
    """The rendered thread."""
    tools: list[dict[str, Any]]
    thread: Thread
    """The thread itself, for models that decide by rule rather than by reading text."""


@dataclass(frozen=True)
class ModelCall:
    """The model's answer: one tool name and its raw, not yet validated, arguments."""

    tool: str
    arguments: dict[str, Any]


class ModelError(Exception):
    """The model gave no usable answer; the message goes into the thread as an error."""


class ModelUnavailable(ModelError):
    """The model API failed even after the client's retries (outage, overload, auth)."""


class ModelOutputInvalid(ModelError):
    """The model answered, but not with exactly one tool call."""


class Model(Protocol):
    def decide(self, request: ModelRequest) -> ModelCall:
        """Return the next tool call; raise ``ModelError`` when there is none to give."""
        ...
