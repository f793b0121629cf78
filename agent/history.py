"""A thread's events: an immutable sequence that grows in constant time.

``reduce`` returns a new thread for every event, and a thread must never change once
made. Copying all events into a new tuple for each one made folding a thread quadratic
in its length. Instead every ``History`` is a view of the first ``length`` entries of a
``_Log``, a list that only ever grows and is shared by the histories folded from one
another. Adding an event to a history that ends where its log ends appends to the log
in place: older histories do not see the new entry, as their length stops short of it.
Adding an event to any other history (an older thread, folded again in another
direction, as a fork or a retried append does) copies its entries into a new log first.
So a history never changes, and each history answers only for its own entries.

The log also keeps the indexes that the thread's lookups need (its first trigger, a
request by id, the response that settled a request, the responses and expiries
``reduce`` ignored, the approvals that left their request short of their quorum, where the
heeded events of each type and tool are), built as entries are added. An entry's index facts
depend only on the entries before it, so they hold for every history that contains the entry.
So does an entry's rendering for the model, which the log keeps once made: a later step of the
thread renders only what is new to it.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeAlias, TypeVar, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from agent.events import Event, HumanRequest, HumanResponse, Trigger

Kind = TypeVar("Kind")
Key: TypeAlias = str | tuple[str, str | None]
"""What the heeded events are indexed by: their type, and for tool calls, results and errors
also their type and the tool they name."""

_GROW = threading.Lock()
"""Held while checking that a history ends where its log ends and appending to it, so that
two threads folding different events onto one history never both take the same slot."""


class _Log:
    """The entries shared by histories, and their indexes. Only ever appended to."""

    __slots__ = (
        "events",
        "ignored",
        "kept",
        "kinds",
        "partial",
        "renderings",
        "requests",
        "settled",
        "triggers",
    )

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.ignored: list[int] = []
        """Positions of the events ``reduce`` ignored, ascending."""
        self.partial: list[int] = []
        """Positions of the approvals that counted but left their request pending, ascending."""
        self.requests: dict[str, int] = {}
        """Position of the first ``HumanRequest`` with each request id."""
        self.settled: dict[str, int] = {}
        """Position of the first response with each request id that settled it (``reduce`` did not
        ignore it, and it was not an approval short of the request's quorum)."""
        self.triggers: list[int] = []
        """Positions of the triggers, ascending."""
        self.kinds: dict[Key, list[int]] = {}
        """Positions of the events ``reduce`` did not ignore, ascending, by each of their keys."""
        self.renderings: dict[int, str | None] = {}
        """The entries rendered so far, by position."""
        self.kept: dict[Hashable, tuple[int, object]] = {}
        """Facts about the first entries (``History.keep``), by key, with how many entries."""

    def add(self, event: Event, ignored: bool, partial: bool = False) -> None:
        position = len(self.events)
        self.events.append(event)
        kind = event.type
        if ignored:
            self.ignored.append(position)
        else:
            self.kinds.setdefault(kind, []).append(position)
        if partial:
            self.partial.append(position)
        # By the type's name rather than by class: a failed isinstance on a pydantic model is
        # slow, and every event is added once per fold.
        match event.type:
            case "tool_call" | "tool_result" | "error" if not ignored:
                self.kinds.setdefault((kind, event.tool), []).append(position)
            case "trigger":
                self.triggers.append(position)
            case "human_request":
                self.requests.setdefault(event.request_id, position)
            case "human_response" if not ignored and not partial:
                self.settled.setdefault(event.request_id, position)
            case _:
                pass

    def prefix(self, length: int) -> _Log:
        """A new log holding the first ``length`` entries of this one."""
        log = _Log()
        log.events = self.events[:length]
        log.ignored = self.ignored[: bisect_left(self.ignored, length)]
        log.partial = self.partial[: bisect_left(self.partial, length)]
        log.requests = {key: at for key, at in self.requests.items() if at < length}
        log.settled = {key: at for key, at in self.settled.items() if at < length}
        log.triggers = self.triggers[: bisect_left(self.triggers, length)]
        log.kinds = {kind: at[: bisect_left(at, length)] for kind, at in self.kinds.items()}
        log.renderings = {at: text for at, text in self.renderings.items() if at < length}
        log.kept = {key: kept for key, kept in self.kept.items() if kept[0] <= length}
        return log


class History(Sequence[Event]):
    """A thread's events, oldest first. Behaves as a tuple of events: it is immutable,
    compares equal to a tuple of the same events, and its slices are tuples."""

    __slots__ = ("_length", "_log")

    def __init__(self, events: Iterable[Event] = ()) -> None:
        """The history of ``events`` as a thread that ignored none of them."""
        self._log = _Log()
        for event in events:
            self._log.add(event, ignored=False)
        self._length = len(self._log.events)

    @classmethod
    def restored(
        cls, events: Iterable[Event], ignored: Iterable[int], partial: Iterable[int] = ()
    ) -> History:
        """The history of a thread that held ``events``, ignored those at the positions
        ``ignored`` (see ``ignored_positions``) and counted the approvals at ``partial`` short of
        their quorum (see ``partial_positions``): what folding them would give, without folding."""
        skip = frozenset(ignored)
        short = frozenset(partial)
        log = _Log()
        for position, event in enumerate(events):
            log.add(event, ignored=position in skip, partial=position in short)
        return cls._view(log, len(log.events))

    def ignored_positions(self) -> list[int]:
        """Where the events ``reduce`` ignored are, ascending (for ``restored``)."""
        positions = self._log.ignored
        return positions[: bisect_left(positions, self._length)]

    def partial_positions(self) -> list[int]:
        """Where the approvals short of their request's quorum are, ascending (for ``restored``)."""
        positions = self._log.partial
        return positions[: bisect_left(positions, self._length)]

    @classmethod
    def _view(cls, log: _Log, length: int) -> History:
        history = cls.__new__(cls)
        history._log = log
        history._length = length
        return history

    def appended(self, event: Event, ignored: bool, partial: bool = False) -> History:
        """This history and then ``event``; ``ignored`` says whether ``reduce`` ignored it,
        ``partial`` whether it is an approval that counted but left its request pending.

        Constant time when this history ends where its log ends (a thread folded forward);
        otherwise it copies this history's entries into a new log first."""
        with _GROW:
            if len(self._log.events) == self._length:
                self._log.add(event, ignored, partial)
                return History._view(self._log, self._length + 1)
        log = self._log.prefix(self._length)
        log.add(event, ignored, partial)
        return History._view(log, self._length + 1)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Event, ...]: ...

    def __getitem__(self, index: int | slice) -> Event | tuple[Event, ...]:
        if isinstance(index, slice):
            return tuple(self._log.events[: self._length][index])
        if not -self._length <= index < self._length:
            raise IndexError(f"event index {index} out of range for a history of {self._length} events")
        return self._log.events[index % self._length]

    def __iter__(self) -> Iterator[Event]:
        return islice(self._log.events, self._length)

    def __reversed__(self) -> Iterator[Event]:
        events = self._log.events
        return (events[position] for position in range(self._length - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            if other._log is self._log:
                return other._length == self._length
        elif not isinstance(other, tuple):
            return NotImplemented
        return len(other) == self._length and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"History({list(self)!r})"

    def first_trigger(self) -> Trigger | None:
        return self._at(self._log.triggers[0], Trigger) if self._log.triggers else None

    def trigger_since(self, position: int) -> bool:
        """Whether a trigger is at ``position`` or after it."""
        triggers = self._log.triggers
        last = bisect_left(triggers, self._length) - 1
        return last >= 0 and triggers[last] >= position

    def first_request(self, request_id: str) -> HumanRequest | None:
        """The first ``HumanRequest`` recorded with ``request_id``."""
        return self._at(self._log.requests.get(request_id), HumanRequest)

    def settled(self, request_id: str) -> HumanResponse | None:
        """The response that settled ``request_id``: the first that ``reduce`` did not ignore and
        that did not leave the request pending."""
        return self._at(self._log.settled.get(request_id), HumanResponse)

    def ignored(self) -> list[Event]:
        """The events ``reduce`` ignored, oldest first."""
        positions = self._log.ignored
        return [self._log.events[at] for at in positions[: bisect_left(positions, self._length)]]

    def heeds_last(self) -> bool:
        """Whether ``reduce`` heeded the latest event (did not ignore it)."""
        positions = self._log.ignored
        at = bisect_left(positions, self._length - 1)
        return not (at < len(positions) and positions[at] == self._length - 1)

    def heeded(self) -> list[Event]:
        """The events ``reduce`` did not ignore, oldest first."""
        # Copied in runs between the ignored ones: a step of a long thread asks for them.
        events, positions = self._log.events, self._log.ignored
        heeded: list[Event] = []
        start = 0
        for at in positions[: bisect_left(positions, self._length)]:
            heeded += events[start:at]
            start = at + 1
        heeded += events[start : self._length]
        return heeded

    def heeded_reversed(self) -> Iterator[Event]:
        """The events ``reduce`` did not ignore, newest first: for looking back from the end
        without a pass over the whole thread."""
        events, ignored = self._log.events, self._log.ignored
        at = bisect_left(ignored, self._length) - 1
        for position in range(self._length - 1, -1, -1):
            if at >= 0 and ignored[at] == position:
                at -= 1
                continue
            yield events[position]

    def is_ignored(self, position: int) -> bool:
        """Whether ``reduce`` ignored the event at ``position`` (counted from the start)."""
        positions = self._log.ignored
        at = bisect_left(positions, position)
        return at < len(positions) and positions[at] == position < self._length

    def kinds(self) -> list[Key]:
        """The keys of the heeded events (see ``Key``); some may count none in this history."""
        return list(self._log.kinds)

    def how_many(self, key: Key, start: int, stop: int) -> int:
        """How many heeded events with ``key`` are at positions from ``start`` up to ``stop``."""
        positions = self._log.kinds.get(key, [])
        stop = min(stop, self._length)
        return max(0, bisect_left(positions, stop) - bisect_left(positions, start))

    def positions(self, key: Key, start: int, stop: int) -> list[int]:
        """The positions of the heeded events with ``key`` from ``start`` up to ``stop``, ascending."""
        positions = self._log.kinds.get(key, [])
        stop = min(stop, self._length)
        return positions[bisect_left(positions, start) : bisect_left(positions, stop)]

    def last_of(self, key: Key) -> int:
        """The position of the last heeded event with ``key``, or -1 if there is none."""
        positions = self._log.kinds.get(key, [])
        at = bisect_left(positions, self._length)
        return positions[at - 1] if at else -1

    def first_of(self, key: Key) -> int:
        """The position of the first heeded event with ``key``, or -1 if there is none."""
        positions = self._log.kinds.get(key, [])
        return positions[0] if positions and positions[0] < self._length else -1

    def rendered(self, position: int, render: Callable[[Event], str | None]) -> str | None:
        """``render`` of the event at ``position``, made once per entry and kept with the log.

        An entry never changes, so every history of the log (the next step's thread too)
        reuses it. ``render`` must be the same pure function every time: the context's."""
        renderings = self._log.renderings
        if position in renderings:
            return renderings[position]
        text = renderings[position] = render(self[position])
        return text

    def kept(self, key: Hashable) -> tuple[int, object] | None:
        """What ``keep`` kept under ``key`` for a history of this log no longer than this one,
        and that history's length; None if there is none."""
        kept = self._log.kept.get(key)
        return kept if kept is not None and kept[0] <= self._length else None

    def keep(self, key: Hashable, fact: object) -> None:
        """Keep ``fact`` about this history's entries under ``key``, for every history of the log
        that holds them: the entries never change, so a longer history (the thread's next step)
        derives its own fact from it instead of looking at every entry again. Only the newest is
        kept. A log copied to fold a thread another way keeps the facts about the entries it
        copied; a thread replayed from its events (a fork, an import) starts without any."""
        kept = self._log.kept.get(key)
        if kept is None or kept[0] <= self._length:
            self._log.kept[key] = (self._length, fact)

    def _at(self, position: int | None, kind: type[Kind]) -> Kind | None:
        if position is None or position >= self._length:
            return None
        event = self._log.events[position]
        assert isinstance(event, kind)
        return event

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validated from a history, or from a sequence of events (as a thread that ignored none);
        serialized as a tuple of events, as before it had a type of its own."""
        events = handler.generate_schema(tuple[Event, ...])
        from_events = core_schema.no_info_after_validator_function(cls, events)
        return core_schema.json_or_python_schema(
            json_schema=from_events,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_events]),
            serialization=core_schema.plain_serializer_function_ser_schema(tuple, return_schema=events),
        )
