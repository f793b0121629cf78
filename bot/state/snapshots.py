"""Snapshots: a thread folded up to a known event, so that loading it again parses and folds
only the events after that one (``Store.load``).

The log stays the truth (invariant 1); a snapshot is a cache that a replay rebuilds. Two kinds:

- in Redis, ``thread:{id}:snapshot`` is a hash of ``head`` (JSON: the version of the fold's
  code, the number of events N, the id of the Nth event, the derived fields and where the
  ignored events and the approvals short of their quorum are) and ``events`` (the N events
  as one JSON list). Reading it parses the events in one call and folds none of them:
  folding is what costs most. Whoever loads a thread writes a new one once
  ``SNAPSHOT_EVERY`` events were folded beyond the last; it expires after ``SNAPSHOT_TTL``
  without a new one.
- in the process, the threads loaded or appended to last (``CACHE_EVENTS`` events in all):
  a long-lived worker process (``bot.work.pool``) that advances a thread again reads, parses and
  folds only the events after the ones it holds.

Either is used only if the log continues it: the log's Nth event has the id it names. One
that is missing, unreadable, from another version of the fold's code, or ahead of the log
is ignored, and the thread is replayed from its log.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from agent import approvals, events, history
from agent import thread as fold
from agent.events import Event
from agent.history import History
from agent.thread import Thread

log = structlog.get_logger(__name__)

SNAPSHOT_EVERY = 64
"""Events folded beyond the last snapshot before a load writes a new one: writing one costs
about as much as parsing it, so a short thread never gets one and a long one gets one now and then."""
SNAPSHOT_TTL = 7 * 24 * 3600
"""Seconds a snapshot is kept without a newer one (a thread nobody loads needs none)."""
CACHE_EVENTS = 20_000
"""Events a process keeps in its cache of recent threads, in all (about 2 KB each)."""
EVENTS = TypeAdapter(list[Event])


def _fold_version() -> str:
    """A digest of the code that defines events and the fold: a snapshot from other code is ignored."""
    modules = (events, history, approvals, fold)
    sources = b"".join(Path(module.__file__ or "").read_bytes() for module in modules)
    return hashlib.sha256(sources).hexdigest()[:16]


FOLD_VERSION = _fold_version()


class _Head(BaseModel):
    fold: str
    version: int
    last: str
    """The id of the last event the snapshot holds."""
    ignored: list[int]
    partial: list[int]
    """Where the approvals that left their request pending are (they settled nothing)."""
    derived: dict[str, Any]
    """The thread's fields other than its identity and events, as ``reduce`` left them."""


class Snapshots:
    """The snapshots of one store: Redis's, and this process's recent threads."""

    def __init__(
        self, connection: redis.Redis, location: Callable[[str], str], cache_events: int = CACHE_EVENTS
    ) -> None:
        self.redis = connection
        self.location = location
        """The Redis key of a thread's snapshot, from its id."""
        self.cache_events = cache_events
        self._recent: OrderedDict[str, Thread] = OrderedDict()
        self._cached = 0
        self._guard = threading.Lock()
        """The web app loads threads from several threads at once."""

    def recent(self, thread_id: str) -> Thread | None:
        """The thread as this process last loaded or appended to it, if it still has it."""
        with self._guard:
            thread = self._recent.get(thread_id)
            if thread is not None:
                self._recent.move_to_end(thread_id)
            return thread

    def remember(self, thread: Thread) -> None:
        """Keep ``thread`` as the newest known state of its id, dropping the least recent ones."""
        size = len(thread.events)
        if not size or size > self.cache_events:
            return
        with self._guard:
            old = self._recent.pop(thread.id, None)
            self._cached += size - (len(old.events) if old is not None else 0)
            self._recent[thread.id] = thread
            while self._cached > self.cache_events:
                _, dropped = self._recent.popitem(last=False)
                self._cached -= len(dropped.events)

    def stored(self, thread_id: str, agent: str) -> Thread | None:
        """The thread as Redis's snapshot holds it, or None if there is none this code can use."""
        head, raw_events = self.redis.hmget(self.location(thread_id), ["head", "events"])
        if head is None or raw_events is None:
            return None
        try:
            parsed = _Head.model_validate_json(cast(bytes, head))
            if parsed.fold != FOLD_VERSION:
                log.info("snapshot.ignored", thread_id=thread_id, reason="made by other code")
                return None
            stored = EVENTS.validate_json(cast(bytes, raw_events))
            if len(stored) != parsed.version or not stored or stored[-1].id != parsed.last:
                raise ValueError("its events do not match its head")
            restored = History.restored(stored, parsed.ignored, parsed.partial)
            return Thread.model_validate(
                {**parsed.derived, "id": thread_id, "agent": agent, "events": restored}
            )
        except (ValidationError, ValueError) as exc:
            log.warning("snapshot.ignored", thread_id=thread_id, reason=type(exc).__name__)
            return None

    def save(self, thread: Thread) -> None:
        """Write ``thread`` as its id's snapshot in Redis."""
        head = _Head(
            fold=FOLD_VERSION,
            version=len(thread.events),
            last=thread.events[-1].id,
            ignored=thread.events.ignored_positions(),
            partial=thread.events.partial_positions(),
            derived=thread.model_dump(mode="json", exclude={"id", "agent", "events", "ignored"}),
        )
        pipe = self.redis.pipeline()
        pipe.hset(
            self.location(thread.id),
            mapping={"head": head.model_dump_json(), "events": EVENTS.dump_json(list(thread.events))},
        )
        pipe.expire(self.location(thread.id), SNAPSHOT_TTL)
        pipe.execute()


def event_id(raw: bytes | str) -> str | None:
    """The id of one stored event's JSON, without validating the whole event."""
    try:
        value = json.loads(raw).get("id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
