"""Compaction: the events the model is shown, fitted into the agent's token budget.

Compaction keeps the first shown event, then folds the oldest of the others into one
``<compacted>`` summary until the text fits or only the last ``KEEP_RECENT`` are left. So
the events are rendered from the newest back, each once (``History.rendered``), only until
the kept text alone outgrows the budget (the *tail*); the summary's counts come from the
history's indexes, not from a pass.

A thread's next step renders the thread again a few events longer. The tail a rendering
kept is kept with the history (``History.keep``), so the next rendering starts from it: it
adds the new events, takes out the errors a new success resolved, and drops from the old
end what the budget no longer reaches (or, after errors were taken out, reaches back
further). However long the thread and however large the budget, that is the work of the
new events and a few lookups in the history's indexes. The result is the same text, byte
for byte, as a rendering from nothing (``tests/test_context_reference.py`` checks both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape

from agent.events import Error, Event, ToolCall
from agent.history import History, Key
from agent.tags import render_event

KEEP_RECENT = 8
"""Events at the end of a thread that compaction never touches."""


def tokens(chars: int) -> int:
    """A cheap, deterministic token estimate (about four characters per token)."""
    return (chars + 3) // 4


@dataclass(frozen=True)
class _Tail:
    """What a rendering kept of a history: its first shown event and the shown events after
    it that the walk from the newest reached (all of them from ``since`` on), oldest first."""

    start: int
    head: str
    since: int
    positions: list[int]
    texts: list[str]
    chars: int
    """The length of the head and the texts joined, a newline between each two."""

    @property
    def whole(self) -> bool:
        """Whether it holds every shown event after the first."""
        return self.since <= self.start + 1


def fitted(history: History, budget: int) -> str:
    """The shown events of ``history``, compacted to fit ``budget`` tokens."""
    shown = _Shown(history)
    tail = _continued(shown, budget)
    if tail is None:
        first = shown.first()
        if first is None:
            return ""
        start, head = first
        tail = _Tail(start, head, len(history), [], [], len(head))
    tail = _reach(shown, _trimmed(tail, budget), budget)
    history.keep(("tail", budget), tail)
    if tail.whole and (len(tail.texts) <= KEEP_RECENT or tokens(tail.chars) <= budget):
        return "\n".join([tail.head, *tail.texts])
    return _compact(shown, tail, budget)


def _continued(shown: _Shown, budget: int) -> _Tail | None:
    """The tail the last rendering of a shorter (or this) history kept, brought up to this one:
    its new shown events added and the errors a new success resolved taken out. None if there
    is none, or if its first event is such an error."""
    history = shown.history
    kept = history.kept(("tail", budget))
    if kept is None:
        return None
    length, tail = kept
    assert isinstance(tail, _Tail)
    if shown.text(tail.start) is None:
        return None
    positions, texts, chars = tail.positions, tail.texts, tail.chars
    gone = shown.resolved(tail.since, length) if history.how_many("tool_result", length, len(history)) else []
    if gone:
        out = set(gone)
        chars -= sum(len(text) + 1 for at, text in zip(positions, texts, strict=True) if at in out)
        texts = [text for at, text in zip(positions, texts, strict=True) if at not in out]
        positions = [at for at in positions if at not in out]
    new = [(at, text) for at in range(length, len(history)) if (text := shown.text(at)) is not None]
    if new:
        positions = [*positions, *(at for at, _ in new)]
        texts = [*texts, *(text for _, text in new)]
        chars += sum(len(text) + 1 for _, text in new)
    return _Tail(tail.start, tail.head, tail.since, positions, texts, chars)


def _trimmed(tail: _Tail, budget: int) -> _Tail:
    """``tail`` without the oldest events that the walk from the newest would not reach: it
    stops at the fewest (at least ``KEEP_RECENT``) whose text outgrows the budget."""
    texts, chars, drop = tail.texts, tail.chars, 0
    while len(texts) - drop > KEEP_RECENT and tokens(chars - len(texts[drop]) - 1) > budget:
        chars -= len(texts[drop]) + 1
        drop += 1
    if not drop:
        return tail
    positions = tail.positions
    return _Tail(tail.start, tail.head, positions[drop], positions[drop:], texts[drop:], chars)


def _reach(shown: _Shown, tail: _Tail, budget: int) -> _Tail:
    """``tail`` with the older shown events the walk from the newest reaches before the kept
    text outgrows the budget (a new tail has none yet; a tail lost resolved errors)."""
    added: list[tuple[int, str]] = []
    chars, since = tail.chars, tail.since
    for position, text in shown.backwards(tail.since, tail.start):
        if len(tail.texts) + len(added) >= KEEP_RECENT and tokens(chars) > budget:
            break
        added.append((position, text))
        chars += len(text) + 1
        since = position
    else:
        since = tail.start + 1
    if since == tail.since:
        return tail
    added.reverse()
    positions = [*(at for at, _ in added), *tail.positions]
    return _Tail(tail.start, tail.head, since, positions, [*(text for _, text in added), *tail.texts], chars)


def _compact(shown: _Shown, tail: _Tail, budget: int) -> str:
    """Fold the oldest events of ``tail`` until the text fits or only its last
    ``KEEP_RECENT`` are left; the events between the first and the tail are folded already."""
    texts, chars = tail.texts, tail.chars
    summary = shown.folded(tail.start, tail.positions[0])
    for cut in range(1, len(texts) - KEEP_RECENT + 1):
        summary.add(shown.history[tail.positions[cut - 1]])
        chars -= len(texts[cut - 1]) + 1
        if len(texts) - cut == KEEP_RECENT or not _too_long(chars, summary, budget):
            return "\n".join([tail.head, summary.text(), *texts[cut:]])
    return "\n".join([tail.head, summary.text(), *texts])


def _too_long(kept: int, summary: _Folded, budget: int) -> bool:
    """Whether the kept events and the summary, with its newline, exceed ``budget``."""
    if tokens(kept) > budget:
        return True  # whatever the summary adds; so it is written only near the cut
    return tokens(kept + len(summary.text()) + 1) > budget


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
    nothing: an interrupted deploy stays in view after a later list_tags succeeds. So an
    event once hidden stays hidden as the thread grows, and only an error can become hidden.
    """

    def __init__(self, history: History) -> None:
        self.history = history
        self._successes: dict[str | None, int] = {}

    def first(self) -> tuple[int, str] | None:
        """The first shown event's position and rendering, if any event is shown."""
        for position in range(len(self.history)):
            text = self.text(position)
            if text is not None:
                return position, text
        return None

    def backwards(self, stop: int, start: int) -> Iterator[tuple[int, str]]:
        """The shown events before ``stop`` and after ``start``, newest first, with their positions."""
        for position in range(stop - 1, start, -1):
            text = self.text(position)
            if text is not None:
                yield position, text

    def resolved(self, start: int, stop: int) -> list[int]:
        """The positions of the errors from ``start`` up to ``stop`` that a success resolved."""
        history, gone = self.history, []
        for key in history.kinds():
            if isinstance(key, tuple) and key[0] == "error":
                gone += history.positions(key, start, min(stop, self._last_success(key[1])))
        return gone

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

    def text(self, position: int) -> str | None:
        """The rendering of the event at ``position``, or None if it is not shown."""
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
