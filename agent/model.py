"""The model interface: given the rendered context, choose exactly one tool call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.events import Usage
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
    model: str = field(default="", compare=False)
    """Which model answered, as the API named it (empty for scripted answers)."""
    stop_reason: str | None = field(default=None, compare=False)
    usage: Usage = field(default_factory=Usage, compare=False)


class ModelError(Exception):
    """The model gave no usable answer; the message goes into the thread as an error."""


class ModelUnavailable(ModelError):
    """The model API failed even after the client's retries (outage, overload, auth)."""

    def __init__(
        self,
        message: str,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        """Whether another try may succeed (overload, rate limit, 5xx, connection)."""
        self.retry_after = retry_after
        """Seconds the API asked to wait before the next try, if it said."""
        self.status = status


class ModelOutputInvalid(ModelError):
    """The model answered, but not with exactly one tool call."""


class Model(Protocol):
    def decide(self, request: ModelRequest) -> ModelCall:
        """Return the next tool call; raise ``ModelError`` when there is none to give."""
        ...


class AsyncModel(Protocol):
    """A model for the caller process, which holds many calls in flight on one event loop."""

    async def decide(self, request: ModelRequest) -> ModelCall:
        """Return the next tool call; raise ``ModelError`` when there is none to give."""
        ...


class Immediate:
    """A ``Model`` that answers at once (scripted, no I/O) as an ``AsyncModel``: the caller runs
    scripted agents on the same path as Anthropic ones."""

    def __init__(self, model: Model) -> None:
        self.model = model

    async def decide(self, request: ModelRequest) -> ModelCall:
        return self.model.decide(request)
