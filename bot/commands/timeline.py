"""A thread as a readable timeline, one line per event (``outerloop show``)."""

from __future__ import annotations

import json
from datetime import UTC

from agent.events import (
    AgentMessage,
    Cancelled,
    Context,
    Done,
    Error,
    Event,
    Failed,
    Forked,
    GrantRevoked,
    HumanRequest,
    HumanResponse,
    ModelDecided,
    ModelRequested,
    Paused,
    RequestExpired,
    Resumed,
    ToolCall,
    ToolResult,
    Trigger,
)
from agent.loop import describe_call
from agent.thread import Thread
from bot.usage.tokens import Spend

WIDTH = 100


def timeline(thread: Thread, spend: Spend | None = None) -> str:
    """The thread's events, one line each; then what it waits on, and what its model calls cost."""
    lines = [f"thread {thread.id}  agent={thread.agent}  status={thread.status.value}"]
    forked = next((event for event in thread.events if isinstance(event, Forked)), None)
    if forked is not None:
        lines.append(f"forked from {forked.source} at {forked.kept}")
    for number, event in enumerate(thread.events, start=1):
        lines.append(f"{number:>3}  {event.at:%H:%M:%S}  {event.type:<14} {_shorten(describe(event))}")
    if thread.pending is not None:
        how = (
            "--approve [--set KEY=VALUE] | --reject REASON"
            if thread.pending.kind == "approval"
            else "--answer TEXT"
        )
        how += " [--as WHO]"
        lines.append(f"waiting on request {thread.pending.request_id}: outerloop respond {thread.id} {how}")
        if thread.pending.expires_at is not None:
            lines.append(f"it expires at {thread.pending.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    if spend is not None and spend.calls:
        lines.append(f"usage: {spend.describe()}")
    return "\n".join(lines)


def describe(event: Event) -> str:
    match event:
        case Trigger(origin=origin, text=text):
            return f"{origin.channel}:{origin.sender}: {text}"
        case Context(name=name, content=content):
            return f"{name}: {content}"
        case ToolCall(tool=tool, arguments=arguments):
            return f"{tool} {json.dumps(arguments, sort_keys=True)}"
        case ToolResult(tool=tool, output=output):
            return f"{tool} -> {output}"
        case Error(source=source, message=message):
            return f"[{source}] {message}"
        case HumanRequest(kind=kind, call=call, text=text, approvers=approvers):
            who = f" (approvers: {', '.join(approvers)})" if approvers else ""
            subject = describe_call(call) if call is not None and kind == "approval" else text
            return f"{kind}: {subject}{who}"
        case HumanResponse(responder=who, approved=approved, comment=comment, answer=answer):
            verdict = {True: "approved", False: "rejected", None: "answered"}[approved]
            return f"{who} {verdict}{_response_notes(event)}" + (
                f": {answer or comment}" if answer or comment else ""
            )
        case RequestExpired(outcome="timed_out", request_id=request_id):
            return f"request {request_id} timed out unanswered"
        case RequestExpired(outcome=outcome, approvers=approvers, expires_at=expires_at):
            until = f" until {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if expires_at else ""
            return f"{outcome}: asking {', '.join(approvers) or 'anyone'}{until}"
        case AgentMessage(text=text) | Done(message=text):
            return text
        case Paused(by=by, reason=reason) | Cancelled(by=by, reason=reason):
            return by + (f": {reason}" if reason else "")
        case Resumed(by=by):
            return by
        case Forked(source=source, kept=kept):
            return f"forked from {source} at {kept}; its approvals do not carry over"
        case Failed(reason=reason):
            return reason
        case ModelRequested(agent=agent, version=version, basis=basis):
            return f"asked the model ({agent} {version}, {basis} events)"
        case ModelDecided(tool=tool, arguments=arguments, model=model, latency=latency, usage=usage):
            how = f"{model or 'scripted'}, {latency:g} s, {usage.input_tokens} in, {usage.output_tokens} out"
            return f"{tool} {json.dumps(arguments, sort_keys=True)} ({how})"
        case GrantRevoked(grant_id=grant_id, by=by):
            return f"{by} revoked standing approval {grant_id}"


def _response_notes(response: HumanResponse) -> str:
    """What else an approval said: edited arguments, a grant given, the grant it stood for."""
    notes = []
    if response.arguments is not None:
        notes.append(f" with arguments {json.dumps(response.arguments, sort_keys=True)}")
    if response.gives is not None:
        until = (
            f" until {response.gives.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if response.gives.until
            else ""
        )
        notes.append(f", standing for the {response.gives.scope} ({response.gives.grant_id}){until}")
    if response.under is not None:
        notes.append(f" under standing approval {response.under.grant_id}")
    return "".join(notes)


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= WIDTH else flat[: WIDTH - 1] + "…"
