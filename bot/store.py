"""Threads in Redis: append-only event logs with atomic, deduplicated, versioned appends.

Layout (all keys under ``ol:``):
- ``thread:{id}:events`` list of event JSON, the thread's only state (invariant 1);
- ``thread:{id}:meta`` hash: agent, status, version, created_at, updated_at — an index
  derived from the events, rewritten by every append;
- ``status:{status}`` and ``agent:{name}`` sets, ``threads`` sorted set by creation time;
- ``dedupe:{key}`` the thread a stable delivery key went to (invariant 3);
- ``route:{key}`` the thread a channel conversation maps to (a Slack thread, an email chain);
- ``receipt:{event id}`` what a channel needs to find the message it sent for an event;
- ``expiries`` sorted set of the threads whose pending human request has a deadline, scored
  by it, so the scheduler finds due requests without scanning threads.

An append is a compare-and-set on the thread's length: the caller folds the event
into the thread it has, and the Lua script writes it only if nobody appended in
between, so the status index always matches the fold of the log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import cast

import redis

from agent.events import EVENT_ADAPTER, Event
from agent.thread import FINAL, Status, Thread, reduce, replay

PREFIX = "ol"
DEDUPE_TTL = 7 * 24 * 3600
"""How long a delivery key is remembered; Slack and mail servers retry within hours."""

_APPEND = """
-- KEYS: events, meta, dedupe, old status set, new status set, agent set, threads zset, expiries zset
-- ARGV: event json, expected length, thread id, agent, new status, now, has dedupe key, dedupe ttl,
--       deadline of the pending request ('' when none)
if ARGV[7] == '1' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
local length = redis.call('LLEN', KEYS[1])
if length ~= tonumber(ARGV[2]) then return {-1, tostring(length)} end
redis.call('RPUSH', KEYS[1], ARGV[1])
if ARGV[7] == '1' then redis.call('SET', KEYS[3], ARGV[3], 'EX', tonumber(ARGV[8])) end
if length == 0 then
  redis.call('HSET', KEYS[2], 'agent', ARGV[4], 'created_at', ARGV[6])
  redis.call('ZADD', KEYS[7], tonumber(ARGV[6]), ARGV[3])
  redis.call('SADD', KEYS[6], ARGV[3])
end
redis.call('HSET', KEYS[2], 'status', ARGV[5], 'version', length + 1, 'updated_at', ARGV[6])
redis.call('SREM', KEYS[4], ARGV[3])
redis.call('SADD', KEYS[5], ARGV[3])
if ARGV[9] == '' then
  redis.call('ZREM', KEYS[8], ARGV[3])
else
  redis.call('ZADD', KEYS[8], tonumber(ARGV[9]), ARGV[3])
end
return {1, tostring(length + 1)}
"""


class ThreadNotFound(LookupError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no thread with id {thread_id!r}")
        self.thread_id = thread_id


class ThreadExists(ValueError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"a thread with id {thread_id!r} already exists")


@dataclass(frozen=True)
class Appended:
    """The outcome of an append: the thread as stored, and whether the event was new."""

    thread: Thread
    applied: bool
    duplicate_of: str | None = None
    """For a dropped duplicate, the thread its first delivery went to."""


@dataclass(frozen=True)
class ThreadSummary:
    id: str
    agent: str
    status: Status
    version: int
    created_at: float
    updated_at: float


def key(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


def _text(value: bytes | str) -> str:
    """Redis answers bytes (RQ needs a connection without decode_responses)."""
    return value.decode() if isinstance(value, bytes) else value


def _deadline(thread: Thread) -> str:
    """The expiries index score of ``thread``: its pending request's deadline, or '' for none."""
    pending = thread.pending
    if pending is None or pending.expires_at is None or thread.status in FINAL:
        return ""
    return repr(pending.expires_at.timestamp())


class Store:
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        self._append = connection.register_script(_APPEND)

    def create(self, thread_id: str, agent: str, first: Event) -> Appended:
        """Start a thread with its first event; raises ``ThreadExists`` if the id is taken."""
        result = self.append_if_current(Thread(id=thread_id, agent=agent), first)
        if result is None:
            raise ThreadExists(thread_id)
        return result

    def append(self, thread: Thread, event: Event) -> Appended:
        """Append ``event`` after the events ``thread`` holds, catching up on any it lacks.

        Events others appended meanwhile are folded in first, so the result is always the
        stored log; ``event`` goes after them (invariant 4: in order, none lost).
        """
        while True:
            result = self.append_if_current(thread, event)
            if result is not None:
                return result
            thread = self.refresh(thread)

    def append_if_current(self, thread: Thread, event: Event) -> Appended | None:
        """Append ``event`` only if nothing was appended since ``thread`` was loaded; None if
        something was (load again and decide again). For events decided on the thread's
        state, such as an expiry that must not land after an answer."""
        folded = reduce(thread, event)
        outcome, value = self._append(
            keys=[
                key("thread", thread.id, "events"),
                key("thread", thread.id, "meta"),
                key("dedupe", event.key or ""),
                key("status", thread.status.value),
                key("status", folded.status.value),
                key("agent", thread.agent),
                key("threads"),
                key("expiries"),
            ],
            args=[
                EVENT_ADAPTER.dump_json(event),
                len(thread.events),
                thread.id,
                thread.agent,
                folded.status.value,
                time.time(),
                "1" if event.key else "0",
                DEDUPE_TTL,
                _deadline(folded),
            ],
        )
        if outcome == 0:
            return Appended(thread=thread, applied=False, duplicate_of=_text(value))
        if outcome == -1:
            return None
        return Appended(thread=folded, applied=True)

    def expiring(self, until: float) -> list[str]:
        """Threads whose pending request's deadline is at or before ``until`` (a Unix time)."""
        due = cast(list[bytes], self.redis.zrangebyscore(key("expiries"), "-inf", until))
        return [_text(raw) for raw in due]

    def refresh(self, thread: Thread) -> Thread:
        """``thread`` with any events stored after the ones it holds folded in."""
        raw = self.redis.lrange(key("thread", thread.id, "events"), len(thread.events), -1)
        for item in raw:
            thread = reduce(thread, EVENT_ADAPTER.validate_json(item))
        return thread

    def load(self, thread_id: str) -> Thread:
        agent = self.redis.hget(key("thread", thread_id, "meta"), "agent")
        if agent is None:
            raise ThreadNotFound(thread_id)
        raw = self.redis.lrange(key("thread", thread_id, "events"), 0, -1)
        return replay(thread_id, _text(agent), [EVENT_ADAPTER.validate_json(item) for item in raw])

    def summary(self, thread_id: str) -> ThreadSummary:
        meta = self.redis.hgetall(key("thread", thread_id, "meta"))
        if not meta:
            raise ThreadNotFound(thread_id)
        return ThreadSummary(
            id=thread_id,
            agent=_text(meta[b"agent"]),
            status=Status(_text(meta[b"status"])),
            version=int(meta[b"version"]),
            created_at=float(meta[b"created_at"]),
            updated_at=float(meta[b"updated_at"]),
        )

    def ids(self, status: Status | None = None) -> list[str]:
        """Thread ids, newest first; only those in ``status`` when given."""
        raw_ids = cast(list[bytes], self.redis.zrange(key("threads"), 0, -1, desc=True))
        newest_first = [_text(raw) for raw in raw_ids]
        if status is None:
            return newest_first
        members = {_text(raw) for raw in self.redis.smembers(key("status", status.value))}
        return [thread_id for thread_id in newest_first if thread_id in members]

    def summaries(self, status: Status | None = None) -> Iterator[ThreadSummary]:
        for thread_id in self.ids(status):
            yield self.summary(thread_id)

    def route(self, route_key: str) -> str | None:
        value = self.redis.get(key("route", route_key))
        return _text(value) if value is not None else None

    def bind_route(self, route_key: str, thread_id: str) -> str:
        """Map a conversation to ``thread_id`` unless it is mapped already; returns the winner."""
        if self.redis.set(key("route", route_key), thread_id, nx=True):
            return thread_id
        existing = self.route(route_key)
        assert existing is not None, "routes are never deleted"
        return existing

    def receipt(self, event_id: str) -> dict[str, str] | None:
        raw = self.redis.hgetall(key("receipt", event_id))
        return {_text(k): _text(v) for k, v in raw.items()} or None

    def keep_receipt(self, event_id: str, receipt: Mapping[str, str]) -> None:
        self.redis.hset(key("receipt", event_id), items=[part for pair in receipt.items() for part in pair])
