"""Helpers shared by the kernel tests: a test agent, tools that count their calls, fixed events.

Nothing here mocks the kernel: agents are real ``AgentSpec`` objects with a prompt file,
tools are real ``Tool`` objects, and threads are built with the real ``reduce``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from agent.definition import AgentSpec, Prefetch
from agent.events import Event, HumanResponse, Origin, Trigger
from agent.model import Model, ModelCall, ModelRequest
from agent.thread import Thread, reduce
from agent.tools import SAFE, Policy, Tool

APPROVER = "alice"
REQUESTER = "rita"
"""Who sends the test triggers: not the approver, who may not approve their own request."""
"""The test agent's approver: may answer its questions and approve its tools."""
STRANGER = "mallory"
"""Someone who may answer nothing."""
PROMPT = "You are a test agent. Do what the trigger asks, one tool at a time.\n"
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def stamp(n: int) -> dict[str, Any]:
    """A fixed id and timestamp for the ``n``-th hand-made event, so renderings are stable."""
    return {"id": f"ev{n:02d}", "at": START + timedelta(minutes=n)}


class Lookup(BaseModel):
    """Look something up."""

    query: str = Field(default="", description="What to look up.")


class Launch(BaseModel):
    """Launch a target; has side effects."""

    target: Literal["alpha", "beta"]


@dataclass
class CountingTool:
    """A tool whose handler records the arguments of every call; fails on each call if told to."""

    name: str
    policy: Policy = SAFE
    arguments: type[BaseModel] = Lookup
    fail_with: str | None = None
    calls: list[BaseModel] = field(default_factory=list)

    def handle(self, arguments: BaseModel) -> str:
        self.calls.append(arguments)
        if self.fail_with is not None:
            raise RuntimeError(self.fail_with)
        return f"{self.name} ran with {arguments.model_dump_json()}"

    @property
    def tool(self) -> Tool:
        return Tool(self.name, f"The {self.name} tool.", self.arguments, self.handle, self.policy)


def make_spec(
    folder: Path,
    *tools: CountingTool,
    prefetch: tuple[Prefetch, ...] = (),
    error_limit: int = 3,
) -> AgentSpec:
    """The test agent, with its prompt written to ``folder`` and ``APPROVER`` as approver."""
    prompt = folder / "prompt.md"
    prompt.write_text(PROMPT, encoding="utf-8")
    return AgentSpec(
        name="test",
        description="An agent for tests.",
        prompt=prompt,
        tools=tuple(t.tool for t in tools),
        approvers=(APPROVER,),
        prefetch=prefetch,
        error_limit=error_limit,
    )


def trigger(text: str = "please do the thing", sender: str = REQUESTER) -> Trigger:
    return Trigger(text=text, origin=Origin(channel="cli", sender=sender))


def started(text: str = "please do the thing") -> Thread:
    """A new thread with one trigger folded in: running, waiting for its first step."""
    return reduce(Thread(id="t1", agent="test"), trigger(text))


def respond(thread: Thread, responder: str = APPROVER, **answer: Any) -> Thread:
    """Fold a response to the thread's pending request (``approved=``, ``comment=``, ``answer=``)."""
    assert thread.pending is not None, f"thread is {thread.status}, not waiting on a request"
    response = HumanResponse(request_id=thread.pending.request_id, responder=responder, **answer)
    return reduce(thread, response)


EventType = TypeVar("EventType")


def events_of(thread: Thread, kind: type[EventType]) -> list[EventType]:
    """The thread's events of one type, in order."""
    return [e for e in thread.events if isinstance(e, kind)]


def call(tool: str, **arguments: Any) -> ModelCall:
    return ModelCall(tool, arguments)


class Recorder:
    """A ``record`` callback that keeps every event it is given, in order, and folds it."""

    def __init__(self, thread: Thread) -> None:
        self.thread = thread
        self.events: list[Event] = []

    def __call__(self, event: Event) -> Thread:
        self.events.append(event)
        self.thread = reduce(self.thread, event)
        return self.thread


class RecordingModel:
    """Wraps any model and keeps the requests it was asked, to check what the model saw."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.requests: list[ModelRequest] = []

    def decide(self, request: ModelRequest) -> ModelCall:
        self.requests.append(request)
        return self.inner.decide(request)
