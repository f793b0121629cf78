"""Each event as one compact XML-like tag for the model (factor 3).

Large tool outputs are truncated with a note saying so; control events the model has no use
for render as nothing. A rendering depends on its event alone, so a history keeps it once made
(``History.rendered``).
"""

from __future__ import annotations

import json
from html import escape

from agent.events import (
    AgentMessage,
    Context,
    Done,
    Error,
    Event,
    HumanRequest,
    HumanResponse,
    RequestExpired,
    ToolCall,
    ToolResult,
    Trigger,
)

MAX_OUTPUT_CHARS = 2000
"""Longest tool output shown in full; the model gets the head and a note beyond it."""


def render_event(event: Event) -> str | None:
    """One event as a tag, or None for control events the model has no use for."""
    match event:
        case Trigger(origin=origin, text=text):
            return _element(f"{origin.channel}_message", text, {"from": origin.sender})
        case Context(name=name, content=content):
            return _element("context", _truncate(content), {"name": name})
        case ToolCall(tool=tool, arguments=arguments):
            return _element("tool_call", _json(arguments), {"tool": tool})
        case ToolResult(tool=tool, output=output):
            return _element("tool_result", _truncate(output), {"tool": tool})
        case Error(source=source, tool=tool, message=message):
            return _element("error", message, {"source": source, "tool": tool})
        case HumanRequest(kind="approval", call=call) if call is not None:
            return _element("request_approval", _json(call.arguments), {"tool": call.tool})
        case HumanRequest(text=text):
            return _element("request_human_input", text, {})
        case HumanResponse(responder=who, approved=approved, comment=comment, answer=answer):
            verdict = None if approved is None else ("approved" if approved else "rejected")
            return _element(
                "human_response", _said(event, answer or comment or ""), {"from": who, "decision": verdict}
            )
        case RequestExpired():
            return _element("request_expired", _expiry_note(event), {"outcome": event.outcome})
        case AgentMessage(text=text):
            return _element("agent_message", text, {})
        case Done(message=message):
            return _element("done_for_now", message, {})
        case _:
            return None


def _said(response: HumanResponse, text: str) -> str:
    """What a response says, plus the arguments a human changed the call's to: the model must
    know that what ran is not what it proposed."""
    notes = [text] if text else []
    if response.arguments is not None:
        notes.append(
            f"The approver changed the arguments to {_json(response.arguments)}; the call runs with those."
        )
    if response.under is not None:
        notes.append(
            f"Approved under the standing approval {response.under.grant_id} of {response.under.by}."
        )
    return " ".join(notes)


def _expiry_note(expired: RequestExpired) -> str:
    if expired.outcome == "timed_out":
        return "Nobody answered in time. The request is closed unanswered; nothing it asked to approve ran."
    who = ", ".join(expired.approvers) or "anyone"
    return f"Nobody answered in time; {'reminded' if expired.outcome == 'reminded' else 'now asking'} {who}."


def _element(name: str, body: str, attributes: dict[str, str | None]) -> str:
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in attributes.items() if v is not None)
    body = escape(body, quote=False)
    if "\n" in body:
        return f"<{name}{attrs}>\n{body}\n</{name}>"
    return f"<{name}{attrs}>{body}</{name}>"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated: {len(text) - limit} more characters not shown]"
