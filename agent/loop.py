"""The agent loop: ask the model for one step, then let plain code decide (factor 8).

Asking is two events: ``model_requested``, then ``model_decided`` (``agent.asking``); in the
runtime a caller process records the second while no worker holds the thread. A step that
runs nothing (``next_without_running``) may be taken by whoever recorded the event before it;
the others, running a tool above all, are a worker's.

``advance`` owns control flow. Every event it makes goes through ``record``, which
the runtime implements as "persist, then fold", so a crash at any point leaves a
thread that can be resumed from its log alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from agent.approvals import requesters
from agent.asking import decide, request_for
from agent.definition import AgentSpec
from agent.events import (
    Clock,
    Done,
    Error,
    Event,
    HumanRequest,
    ModelDecided,
    ProposedCall,
    ToolCall,
    ToolResult,
    Trigger,
    new_id,
    utcnow,
)
from agent.expiry import deadline
from agent.model import Model
from agent.thread import Status, Thread, reduce
from agent.tools import NEEDS_APPROVAL, DoneForNow, InvalidArguments, RequestHumanInput, Tool

Record = Callable[[Event], Thread]
"""Persist an event and return the thread with it folded in."""
E = TypeVar("E", bound=Event)
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
    basis: int
    """How many events the model saw when it decided to finish."""


@dataclass(frozen=True)
class Invalid:
    error: Error


Decision = UseTool | AskHuman | Finish | Invalid


def judge(decided: ModelDecided, agent: AgentSpec) -> Decision:
    """Validate the model's decision against the agent's tools. Never raises for bad model output."""
    tool = agent.tool(decided.tool)
    if tool is None:
        known = ", ".join(t.name for t in agent.all_tools())
        return Invalid(
            Error(source="arguments", message=f"unknown tool {decided.tool!r}; use one of: {known}")
        )
    try:
        arguments = tool.validate(decided.arguments)
    except InvalidArguments as exc:
        return Invalid(Error(source="arguments", tool=tool.name, message=str(exc)))
    if isinstance(arguments, RequestHumanInput):
        return AskHuman(arguments.question)
    if isinstance(arguments, DoneForNow):
        return Finish(arguments.message, decided.basis)
    return UseTool(tool, arguments)


def advance(
    thread: Thread,
    agent: AgentSpec,
    model: Model | None,
    record: Record | None = None,
    max_steps: int | None = None,
    clock: Clock = utcnow,
    check: Check | None = None,
) -> Thread:
    """Run until the thread waits for a human or the model, finishes, pauses, or uses up its steps.

    With ``model`` the loop asks it in this process; with None it records each request and
    stops there, for a caller process to answer (``agent.asking``). ``clock`` gives "now" for
    the deadlines of human requests (see ``step``); ``check`` runs before each step. A tool's
    run is also guarded by ``record``: its ``tool_call`` is recorded (and, in the runtime,
    fenced by the lock) right before it runs."""
    current = thread

    def fold(event: Event) -> Thread:
        nonlocal current
        current = reduce(current, event)
        return current

    for _ in range(max_steps if max_steps is not None else agent.step_limit):
        if not current.runnable:
            break
        if check is not None:
            check()
        current = step(current, agent, model, record or fold, clock)
    return current


def step(
    thread: Thread, agent: AgentSpec, model: Model | None, record: Record, clock: Clock = utcnow
) -> Thread:
    """One step of a running thread: the switch, in one screen."""
    record = _stamping_deadlines(record, clock)
    if thread.open_call is not None:
        return _recover_interrupted(thread, thread.open_call, agent, record)
    if thread.approved is not None:
        return _run_approved(thread.approved, agent, record)
    if thread.decided is None:
        thread = _ask(thread, agent, model, record)
        if thread.decided is None:  # a caller answers, or the model failed
            return thread
    decision = judge(thread.decided, agent)
    if (event := acting(decision, thread, agent)) is not None:
        return record(event)
    match decision:
        case UseTool(tool, arguments):
            return _run(tool, arguments, new_id(), agent, record)
        case Invalid(error):
            return _escalate_if_stuck(record(error), agent, record)
    raise AssertionError(f"{decision!r} is acted on by a single event")


def acting(decision: Decision, thread: Thread, agent: AgentSpec) -> Done | HumanRequest | None:
    """The one event that acts on ``decision`` when acting runs nothing: finishing, asking a
    person, asking approval for a call. None when it runs a tool now, or records an invalid
    decision's error and maybe escalates: those steps are ``step``'s own."""
    match decision:
        case Finish(message, basis):
            return Done(message=message, basis=basis)
        case AskHuman(question):
            return _question(agent, question)
        case UseTool(tool, arguments) if tool.policy.needs_approval:
            call = ProposedCall(call_id=new_id(), tool=tool.name, arguments=arguments.model_dump(mode="json"))
            return approval_request(agent, tool, call, f"Approve {describe_call(call)}?", thread)
    return None


def next_without_running(thread: Thread, agent: AgentSpec, clock: Clock = utcnow) -> Event | None:
    """The event of ``thread``'s next step if that step runs nothing: a model request, or acting
    on the model's decision to finish, to ask a person or to ask approval (``acting``), its
    deadline stamped. None when the step runs something (a tool, prefetch hooks, a listing of
    tools from a server), records an invalid decision's error, escalates errors to a person,
    or there is no step to take. Whoever recorded the event that woke the thread may take such
    a step at once instead of waking a worker for it (the runtime does, ``Runtime.step_here``)."""
    if not thread.runnable or thread.open_call is not None or thread.approved is not None or agent.toolsets:
        return None
    decided = thread.decided
    if decided is not None:
        event = acting(judge(decided, agent), thread, agent)
        return None if event is None else _stamped(event, clock)
    last = thread.events[-1]
    if isinstance(last, Error) and thread.consecutive_errors >= agent.error_limit:
        return None
    if isinstance(last, Trigger) and agent.prefetch:
        return None
    return request_for(thread, agent)


def _ask(thread: Thread, agent: AgentSpec, model: Model | None, record: Record) -> Thread:
    """Record a request for the model's next step; with ``model``, ask it and record its answer."""
    if thread.consecutive_errors >= agent.error_limit and isinstance(thread.events[-1], Error):
        return _escalate_if_stuck(thread, agent, record)  # a caller recorded the last model error
    if isinstance(thread.events[-1], Trigger):
        thread = _prefetch(thread, agent, record)
    thread = record(request_for(thread, agent))
    if model is None:
        return thread
    answer = decide(thread, agent, model)
    thread = record(answer)
    return _escalate_if_stuck(thread, agent, record) if isinstance(answer, Error) else thread


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

    return lambda event: record(_stamped(event, clock))


def _stamped(event: E, clock: Clock) -> E:
    if isinstance(event, HumanRequest) and event.expires_at is None and event.expiry is not None:
        return event.model_copy(update={"expires_at": deadline(event.expiry, clock())})
    return event


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
