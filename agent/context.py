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
from collections.abc import Iterator, Sequence
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
from agent.history import History, Key
from agent.prompts import render
from agent.thread import Thread

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
    return render("context", events=_render(thread.events, budget))


def render_events(events: Sequence[Event], budget: int) -> str:
    """All ``events`` that matter to the model, compacted to fit ``budget`` tokens.

    Each event counts as heeded: ``user_prompt`` leaves out those its thread ignored."""
    return _render(History(events), budget)


def _render(history: History, budget: int) -> str:
    """The shown events of ``history``, compacted to fit ``budget`` tokens.

    Compaction keeps the first shown event, then folds the oldest of the others into a
    summary until the text fits or only the last ``KEEP_RECENT`` are left. So the events
    are rendered from the newest back, each once (``History.rendered``), only until the
    kept text alone outgrows the budget: however long the thread, the work is what the
    budget holds. The summary's counts come from the history's indexes, not from a pass.
    """
    shown = _Shown(history)
    first = shown.first()
    if first is None:
        return ""
    start, head = first
    tail: list[tuple[int, str]] = []
    """The shown events after the first, newest first, with their positions."""
    kept = len(head)
    """The length of the first event and the tail joined, a newline between each two."""
    for position, text in shown.backwards(start):
        if len(tail) >= KEEP_RECENT and _tokens(kept) > budget:
            return _compact(shown, head, start, tail, kept, budget)
        tail.append((position, text))
        kept += len(text) + 1
    if len(tail) <= KEEP_RECENT or _tokens(kept) <= budget:
        return _join(head, None, tail)
    return _compact(shown, head, start, tail, kept, budget)


def _compact(
    shown: _Shown, head: str, start: int, tail: list[tuple[int, str]], kept: int, budget: int
) -> str:
    """Fold the oldest events of ``tail`` until the text fits or only the tail's last
    ``KEEP_RECENT`` are left; the events between the first and the tail are folded already."""
    summary = shown.folded(start, tail[-1][0])
    for count in range(len(tail) - 1, KEEP_RECENT - 1, -1):
        position, text = tail[count]
        summary.add(shown.history[position])
        kept -= len(text) + 1
        if count == KEEP_RECENT or not _too_long(kept, summary, budget):
            return _join(head, summary, tail[:count])
    return _join(head, summary, tail)


def _join(head: str, summary: _Folded | None, tail: list[tuple[int, str]]) -> str:
    folded = [] if summary is None else [summary.text()]
    return "\n".join([head, *folded, *(text for _, text in reversed(tail))])


def _too_long(kept: int, summary: _Folded, budget: int) -> bool:
    """Whether the kept events and the summary, with its newline, exceed ``budget``."""
    if _tokens(kept) > budget:
        return True  # whatever the summary adds; so it is written only near the cut
    return _tokens(kept + len(summary.text()) + 1) > budget


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


class _Shown:
    """Which events of a history the model is shown, asked one position at a time.

    Not shown: the responses and expiries ``reduce`` ignored (invariant 7), control events
    that render as nothing, and errors a later success resolved (factor 9): a success of
    the same tool, or any success for a tool-less error. An unrelated success resolves
    nothing: an interrupted deploy stays in view after a later list_tags succeeds.
    """

    def __init__(self, history: History) -> None:
        self.history = history
        self._successes: dict[str | None, int] = {}

    def first(self) -> tuple[int, str] | None:
        """The first shown event's position and rendering, if any event is shown."""
        for position in range(len(self.history)):
            text = self._text(position)
            if text is not None:
                return position, text
        return None

    def backwards(self, start: int) -> Iterator[tuple[int, str]]:
        """The shown events after ``start``, newest first, with their positions."""
        for position in range(len(self.history) - 1, start, -1):
            text = self._text(position)
            if text is not None:
                yield position, text

    def folded(self, start: int, stop: int) -> _Folded:
        """The summary of the shown events between positions ``start`` and ``stop``, exclusive."""
        history, folded = self.history, _Folded()
        errors = 0
        for key in history.kinds():
            count = history.how_many(key, start + 1, stop)
            if not count or not self._renders(key):
                continue
            match key:
                case ("tool_call", str(tool)):
                    folded.calls[tool] = count
                case ("error", tool):
                    errors += count - self._resolved(tool, start + 1, stop)
                case str(kind) if kind not in ("tool_call", "error"):
                    folded.kinds[kind] = count
                case _:
                    pass  # a tool call or error in all (counted by tool above), or a result by tool
        if errors:
            folded.kinds["error"] = errors
        return folded

    def _text(self, position: int) -> str | None:
        history = self.history
        if history.is_ignored(position):
            return None
        event = history[position]
        if isinstance(event, Error) and position < self._last_success(event.tool):
            return None
        return history.rendered(position, render_event)

    def _renders(self, key: Key) -> bool:
        """Whether events with ``key`` are rendered (``render_event`` drops by type alone)."""
        first = self.history.first_of(key)
        return self.history.rendered(first, render_event) is not None

    def _resolved(self, tool: str | None, start: int, stop: int) -> int:
        """How many errors naming ``tool`` from ``start`` up to ``stop`` a later success resolved."""
        return self.history.how_many(("error", tool), start, min(stop, self._last_success(tool)))

    def _last_success(self, tool: str | None) -> int:
        if tool not in self._successes:
            key: Key = "tool_result" if tool is None else ("tool_result", tool)
            self._successes[tool] = self.history.last_of(key)
        return self._successes[tool]


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
