"""The context window, rendered by our own code (factor 3).

Each event becomes one compact XML-like tag. Large tool outputs are truncated with a
note saying so; errors that a later success resolved are dropped (factor 9), and so are
human responses the thread ignored (invariant 7); when the rendering exceeds the agent's
token budget, the oldest resolved events are folded into one ``<compacted>`` summary,
keeping the first request and the recent tail.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from html import escape

from agent.definition import AgentSpec
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
from agent.prompts import render
from agent.thread import Thread, without_ignored_responses

MAX_OUTPUT_CHARS = 2000
"""Longest tool output shown in full; the model gets the head and a note beyond it."""
KEEP_RECENT = 8
"""Events at the end of a thread that compaction never touches."""


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic token estimate (about four characters per token)."""
    return _tokens(len(text))


def _tokens(chars: int) -> int:
    return (chars + 3) // 4


def system_prompt(agent: AgentSpec) -> str:
    return render(
        "system",
        agent_name=agent.name,
        agent_description=agent.description,
        instructions=agent.instructions().strip(),
        error_limit=agent.error_limit,
    )


def user_prompt(thread: Thread, budget: int) -> str:
    return render("context", events=render_events(without_ignored_responses(thread), budget))


def render_events(events: Sequence[Event], budget: int) -> str:
    """All events that matter to the model, compacted to fit ``budget`` tokens."""
    shown = [(e, tag) for e in _without_resolved_errors(events) if (tag := render_event(e)) is not None]
    return _compact([event for event, _ in shown], [tag for _, tag in shown], budget)


def _compact(visible: Sequence[Event], rendered: Sequence[str], budget: int) -> str:
    """Fold from the oldest event after the first until the text fits or only the tail is left.

    Each candidate text's length is summed from the events' lengths, computed once; the
    summary's counts grow by one event per cut, and its text is written only once the kept
    events alone fit. One pass, however many events are folded.
    """
    # A joined text is as long as its parts plus a newline between each two.
    kept = sum(len(tag) + 1 for tag in rendered) - 1
    summary: _Folded | None = None
    cut = 1
    while _too_long(kept, summary, budget) and cut < len(visible) - KEEP_RECENT:
        kept -= len(rendered[cut]) + 1
        summary = summary or _Folded()
        summary.add(visible[cut])
        cut += 1
    if summary is None:
        return "\n".join(rendered)
    return "\n".join([rendered[0], summary.text(), *rendered[cut:]])


def _too_long(kept: int, summary: _Folded | None, budget: int) -> bool:
    """Whether the kept events, and the summary with its newline once there is one, exceed ``budget``."""
    if _tokens(kept) > budget:
        return True  # whatever the summary adds; so it is written only near the cut
    return summary is not None and _tokens(kept + len(summary.text()) + 1) > budget


class _Folded:
    """The events compaction folded so far, counted as they are added, and their summary tag."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def add(self, event: Event) -> None:
        if isinstance(event, ToolCall):
            self.calls[event.tool] += 1
        else:
            self.kinds[event.type] += 1

    def text(self) -> str:
        parts = [f"{count} {kind}" for kind, count in sorted(self.kinds.items())]
        if self.calls:
            tools = ", ".join(f"{name} x{count}" for name, count in sorted(self.calls.items()))
            parts.insert(0, f"tool calls: {tools}")
        count = self.calls.total() + self.kinds.total()
        return f'<compacted events="{count}">{escape("; ".join(parts))}</compacted>'


def _without_resolved_errors(events: Sequence[Event]) -> list[Event]:
    """Drop errors a later success resolved: one of the same tool, or any for tool-less errors.

    An unrelated success resolves nothing: an interrupted deploy stays in view after
    a later list_tags succeeds.
    """
    last_success: dict[str | None, int] = {}
    for index, event in enumerate(events):
        if isinstance(event, ToolResult):
            last_success[event.tool] = index
            last_success[None] = index

    def resolved(index: int, event: Event) -> bool:
        return isinstance(event, Error) and index < last_success.get(event.tool, -1)

    return [event for index, event in enumerate(events) if not resolved(index, event)]


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
