"""The agent loop: ask the model for one step, then let plain code decide (factor 8).

``advance`` owns control flow. Every event it makes goes through ``record``, which
the runtime implements as "persist, then fold", so a crash at any point leaves a
thread that can be resumed from its log alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from agent.approvals import requesters
from agent.context import system_prompt, user_prompt
from agent.definition import AgentSpec
from agent.events import (
    Clock,
    Done,
    Error,
    Event,
    HumanRequest,
    ProposedCall,
    ToolCall,
    ToolResult,
    Trigger,
    new_id,
    utcnow,
)
from agent.expiry import deadline
from agent.model import Model, ModelError, ModelRequest
from agent.thread import Status, Thread, reduce
from agent.tools import NEEDS_APPROVAL, DoneForNow, InvalidArguments, RequestHumanInput, Tool

Record = Callable[[Event], Thread]
"""Persist an event and return the thread with it folded in."""
Check = Callable[[], None]
"""Raise if this process may no longer advance the thread (the runtime's lock was lost);
called before every step, so before every model call and tool run."""


@dataclass(frozen=True)
class UseTool:
    tool: Tool
    arguments: BaseModel


@dataclass(frozen=True)
class AskHuman:
    question: str


@dataclass(frozen=True)
class Finish:
    message: str


@dataclass(frozen=True)
class Invalid:
    error: Error


Decision = UseTool | AskHuman | Finish | Invalid


def next_step(thread: Thread, agent: AgentSpec, model: Model) -> Decision:
    """Ask the model for the next step and validate it. Never raises for bad model output."""
    request = ModelRequest(
        system=system_prompt(agent),
        context=user_prompt(thread, agent.context_budget),
        tools=[tool.schema() for tool in agent.all_tools()],
        thread=thread,
    )
    try:
        call = model.decide(request)
    except ModelError as exc:
        return Invalid(Error(source="model", message=str(exc)))
    tool = agent.tool(call.tool)
    if tool is None:
        known = ", ".join(t.name for t in agent.all_tools())
        return Invalid(Error(source="arguments", message=f"unknown tool {call.tool!r}; use one of: {known}"))
    try:
        arguments = tool.validate(call.arguments)
    except InvalidArguments as exc:
        return Invalid(Error(source="arguments", tool=tool.name, message=str(exc)))
    if isinstance(arguments, RequestHumanInput):
        return AskHuman(arguments.question)
    if isinstance(arguments, DoneForNow):
        return Finish(arguments.message)
    return UseTool(tool, arguments)


def advance(
    thread: Thread,
    agent: AgentSpec,
    model: Model,
    record: Record | None = None,
    max_steps: int | None = None,
    clock: Clock = utcnow,
    check: Check | None = None,
) -> Thread:
    """Run until the thread waits for a human, finishes, pauses, or uses up its steps.

    ``clock`` gives "now" for the deadlines of human requests (see ``step``); ``check`` runs
    before each step. A tool's run is also guarded by ``record``: its ``tool_call`` is
    recorded (and, in the runtime, fenced by the lock) right before it runs."""
    current = thread

    def fold(event: Event) -> Thread:
        nonlocal current
        current = reduce(current, event)
        return current

    for _ in range(max_steps if max_steps is not None else agent.step_limit):
        if current.status is not Status.RUNNING:
            break
        if check is not None:
            check()
        current = step(current, agent, model, record or fold, clock)
    return current


def step(thread: Thread, agent: AgentSpec, model: Model, record: Record, clock: Clock = utcnow) -> Thread:
    """One step of a running thread: the switch, in one screen."""
    record = _stamping_deadlines(record, clock)
    if thread.open_call is not None:
        return _recover_interrupted(thread, thread.open_call, agent, record)
    if thread.approved is not None:
        return _run_approved(thread.approved, agent, record)
    if thread.events and isinstance(thread.events[-1], Trigger):
        thread = _prefetch(thread, agent, record)
    match next_step(thread, agent, model):
        case Finish(message):
            return record(Done(message=message, basis=len(thread.events)))
        case AskHuman(question):
            return record(_question(agent, question))
        case UseTool(tool, arguments) if tool.policy.needs_approval:
            call = ProposedCall(call_id=new_id(), tool=tool.name, arguments=arguments.model_dump(mode="json"))
            return record(approval_request(agent, tool, call, f"Approve {describe_call(call)}?", thread))
        case UseTool(tool, arguments):
            return _run(tool, arguments, new_id(), agent, record)
        case Invalid(error):
            return _escalate_if_stuck(record(error), agent, record)


def describe_call(call: ProposedCall) -> str:
    """A one-line, human-readable rendering of a call, for approval prompts."""
    arguments = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in call.arguments.items())
    return f"{call.tool}({arguments})"


def approval_request(
    agent: AgentSpec, tool: Tool | None, call: ProposedCall, text: str, thread: Thread
) -> HumanRequest:
    """Ask for ``call`` as the tool's policy says: whom, how many, who not (its requesters)."""
    policy = tool.policy if tool is not None else NEEDS_APPROVAL
    return HumanRequest(
        request_id=new_id(),
        kind="approval",
        text=text,
        call=call,
        approvers=agent.approvers_for(tool),
        expiry=agent.expiry_for(tool),
        quorum=policy.min_approvals,
        excluded=requesters(thread.events) if policy.separate_duties else (),
        standing=policy.standing,
    )


def _question(agent: AgentSpec, text: str) -> HumanRequest:
    return HumanRequest(
        request_id=new_id(), kind="question", text=text, approvers=agent.approvers, expiry=agent.expiry
    )


def _stamping_deadlines(record: Record, clock: Clock) -> Record:
    """``record`` that first sets a human request's deadline from its expiry and ``clock``.

    The one place the loop reads a clock, so requests are made without one and ``reduce``
    never needs one."""

    def stamped(event: Event) -> Thread:
        if isinstance(event, HumanRequest) and event.expires_at is None and event.expiry is not None:
            event = event.model_copy(update={"expires_at": deadline(event.expiry, clock())})
        return record(event)

    return stamped


def _run(tool: Tool, arguments: BaseModel, call_id: str, agent: AgentSpec, record: Record) -> Thread:
    record(ToolCall(call_id=call_id, tool=tool.name, arguments=arguments.model_dump(mode="json")))
    return _execute(tool, arguments, call_id, agent, record)


def _execute(tool: Tool, arguments: BaseModel, call_id: str, agent: AgentSpec, record: Record) -> Thread:
    try:
        output = tool.run(arguments)
    except Exception as exc:  # noqa: BLE001 - any tool failure is context for the model (factor 9)
        error = Error(source="tool", tool=tool.name, call_id=call_id, message=f"{type(exc).__name__}: {exc}")
        return _escalate_if_stuck(record(error), agent, record)
    return record(ToolResult(call_id=call_id, tool=tool.name, output=output))


def _run_approved(call: ProposedCall, agent: AgentSpec, record: Record) -> Thread:
    tool = agent.tool(call.tool)
    try:
        if tool is None:
            raise LookupError(f"agent {agent.name} no longer has a tool named {call.tool!r}")
        arguments = tool.validate(call.arguments)
    except (LookupError, InvalidArguments) as exc:
        # Record the call as decided so it is not retried, then report why it could not run.
        record(ToolCall(call_id=call.call_id, tool=call.tool, arguments=call.arguments))
        error = Error(source="arguments", tool=call.tool, call_id=call.call_id, message=str(exc))
        return _escalate_if_stuck(record(error), agent, record)
    return _run(tool, arguments, call.call_id, agent, record)


def _recover_interrupted(thread: Thread, call: ToolCall, agent: AgentSpec, record: Record) -> Thread:
    """A call was recorded but never finished: the worker died mid-call (invariant 5)."""
    tool = agent.tool(call.tool)
    if tool is not None and tool.policy.idempotent:
        try:
            arguments = tool.validate(call.arguments)
        except InvalidArguments as exc:
            error = Error(source="arguments", tool=call.tool, call_id=call.call_id, message=str(exc))
            return _escalate_if_stuck(record(error), agent, record)
        return _execute(tool, arguments, call.call_id, agent, record)
    proposed = ProposedCall(call_id=new_id(), tool=call.tool, arguments=call.arguments)
    record(
        Error(
            source="interrupted",
            tool=call.tool,
            call_id=call.call_id,
            message=f"the worker stopped while {call.tool} was running; it may or may not have taken effect",
        )
    )
    text = (
        f"{describe_call(proposed)} was interrupted and may or may not have run. "
        "Approve to run it again, or reject to leave it as it is."
    )
    return record(approval_request(agent, tool, proposed, text, thread))


def _prefetch(thread: Thread, agent: AgentSpec, record: Record) -> Thread:
    for hook in agent.prefetch:
        try:
            context = hook(thread)
        except Exception as exc:  # noqa: BLE001 - a failed fetch is context, not a crash
            thread = record(Error(source="tool", tool="prefetch", message=f"{type(exc).__name__}: {exc}"))
            continue
        if context is not None:
            thread = record(context)
    return thread


def _escalate_if_stuck(thread: Thread, agent: AgentSpec, record: Record) -> Thread:
    """After ``error_limit`` consecutive errors, stop retrying and ask a human (factor 9)."""
    if thread.consecutive_errors < agent.error_limit or thread.status is not Status.RUNNING:
        return thread
    last = next(e for e in reversed(thread.events) if isinstance(e, Error))
    text = (
        f"I hit {thread.consecutive_errors} errors in a row and stopped retrying. "
        f"The last one: {last.message}. How should I proceed?"
    )
    return record(_question(agent, text))
