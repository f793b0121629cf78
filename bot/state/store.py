"""Threads in Redis: append-only event logs with atomic, deduplicated, versioned, fenced appends.

Layout (all keys under ``ol:``):
- ``thread:{id}:events`` list of event JSON, the thread's only state (invariant 1);
- ``thread:{id}:snapshot`` the thread folded up to some event, a cache that a replay of the
  log rebuilds (``bot.state.snapshots``);
- ``thread:{id}:meta`` hash: agent, status, version, created_at, updated_at — an index
  derived from the events, rewritten by every append;
- ``by-status:{status}`` and ``by-agent:{name}`` sorted sets and the ``threads`` sorted set,
  all scored by creation time, so lists page without reading every thread;
- ``dedupe:{key}`` the thread a stable delivery key went to (invariant 3);
- ``route:{key}`` the thread a channel conversation maps to (a Slack thread, an email chain);
- ``receipt:{event id}`` what a channel needs to find the message it sent for an event;
- ``thread:{id}:aside`` set of the route and receipt keys above that belong to the thread, so
  that retention forgets them with it (their names come from outside: message ids, event ids);
- ``expiries`` sorted set of the threads whose pending human request has a deadline, scored
  by it, so the scheduler finds due requests without scanning threads;
- ``ended`` sorted set of ``{thread id} {agent}`` of ended threads, kept only with a retention
  period (``OUTERLOOP_RETENTION_DAYS``);
- ``outbox`` sorted set of ``{thread id} {event id}`` deliveries owed, scored by when they were
  last handed to a delivery job (invariant 9; see ``bot.delivery.outbox``);
- ``audit`` sorted set of the latest decisions (``bot.approvals.audit``), scored by when they were
  recorded, written by the append that records each one.

An append is a compare-and-set on the thread's length: the caller folds the event
into the thread it has, and the Lua script writes it only if nobody appended in
between, so the status index always matches the fold of the log. A worker's append is
also *fenced*: it names the lock value it holds, and the script refuses it unless the
thread's lock still has that value (invariant 4), in the same atomic step. Storing an
event people must see and owing its delivery are that same step too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, cast

import redis

from agent.events import EVENT_ADAPTER, Event
from agent.thread import FINAL, Status, Thread, reduce, replay
from bot.approvals import audit
from bot.state.snapshots import SNAPSHOT_EVERY, Snapshots, event_id

PREFIX = "ol"
UNLOCKED = "(nobody holds the lock)"
"""The ``fence`` of an append that lands only while no worker holds the thread's lock (no lock
value looks like it): a step taken outside a worker (``Runtime.step_here``)."""
DEDUPE_TTL = 7 * 24 * 3600
"""How long a delivery key is remembered; Slack and mail servers retry within hours."""
ENDED = frozenset({Status.DONE, *FINAL})
"""Statuses after which the retention period starts (a follow-up message to a done thread
makes it live again, and keeps it). An ended thread's log and meta expire in Redis; its
entry in ``ended`` (``{id} {agent}``, scored by when it ended) tells ``forget_expired``
which index entries, routes and receipts to drop."""

_APPEND = """
-- KEYS: 1 events, 2 meta, 3 dedupe, 4 old status zset, 5 new status zset, 6 agent zset, 7 threads zset,
--       8 expiries zset, 9 lock, 10 outbox, 11 ended zset, 12 audit zset, 13 the key the append
--       requires (a live grant; a key never set when it requires none)
-- ARGV: 1 event json, 2 expected length, 3 thread id, 4 agent, 5 new status, 6 now, 7 has dedupe key,
--       8 dedupe ttl, 9 deadline of the pending request ('' when none), 10 the lock value the writer
--       holds ('' for a writer that needs no lock; ARGV[18] for one that needs nobody to hold it),
--       11 '1' when the event is owed a delivery,
--       12 event id, 13 retention in seconds ('0': keep), 14 '1' when the new status has ended the thread,
--       15 the audit entry ('' for none), 16 '1' when KEYS[13] must exist (a live grant), 17 audit cap,
--       18 the fence of a writer that needs the lock free (``UNLOCKED``)
if ARGV[10] == ARGV[18] then
  if redis.call('EXISTS', KEYS[9]) == 1 then return {-2, ''} end
elseif ARGV[10] ~= '' and redis.call('GET', KEYS[9]) ~= ARGV[10] then return {-2, ''} end
if ARGV[16] == '1' and redis.call('EXISTS', KEYS[13]) == 0 then return {-3, ''} end
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
  redis.call('ZADD', KEYS[6], tonumber(ARGV[6]), ARGV[3])
end
local created = tonumber(redis.call('HGET', KEYS[2], 'created_at'))
redis.call('HSET', KEYS[2], 'status', ARGV[5], 'version', length + 1, 'updated_at', ARGV[6])
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('ZADD', KEYS[5], created, ARGV[3])
if ARGV[9] == '' then
  redis.call('ZREM', KEYS[8], ARGV[3])
else
  redis.call('ZADD', KEYS[8], tonumber(ARGV[9]), ARGV[3])
end
if ARGV[11] == '1' then redis.call('ZADD', KEYS[10], tonumber(ARGV[6]), ARGV[3] .. ' ' .. ARGV[12]) end
if ARGV[13] ~= '0' then
  if ARGV[14] == '1' then
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[13]))
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[13]))
    redis.call('ZADD', KEYS[11], tonumber(ARGV[6]), ARGV[3] .. ' ' .. ARGV[4])
  else
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
    redis.call('ZREM', KEYS[11], ARGV[3] .. ' ' .. ARGV[4])
  end
end
if ARGV[15] ~= '' then
  redis.call('ZADD', KEYS[12], tonumber(ARGV[6]), ARGV[15])
  redis.call('ZREMRANGEBYRANK', KEYS[12], 0, -tonumber(ARGV[17]) - 1)
end
return {1, tostring(length + 1)}
"""

_BIND = """
-- KEYS: 1 the route, 2 the thread's aside set; ARGV: 1 the thread id
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SADD', KEYS[2], KEYS[1])
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""

Owes = Callable[[Thread, Event], bool]
"""Whether people must be shown ``event`` of ``thread`` (the event folded in): the outbox's rule."""
Observe = Callable[[Thread, Thread, Event], None]
"""Told of every applied append: the thread before, the thread after, the event (the metrics)."""


class ThreadNotFound(LookupError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no thread with id {thread_id!r}")
        self.thread_id = thread_id


class ThreadExists(ValueError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(f"a thread with id {thread_id!r} already exists")


class RequirementGone(LookupError):
    """The key an append required is gone (a grant revoked or ended): nothing was written."""


class LockLost(RuntimeError):
    """The writer no longer holds the thread's lock: another worker may be advancing it, so
    the writer must stop work on the thread at once (invariant 4)."""


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


@dataclass(frozen=True)
class Page:
    """One page of a thread listing, newest first; ``cursor`` fetches the next one (None: no more)."""

    threads: list[ThreadSummary]
    cursor: str | None


def key(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


class LockKeys(NamedTuple):
    """The keys of a thread's lock (``bot.state.lock``), named here, where every append checks it."""

    lock: str
    wanted: str
    """Set when a wake-up found the lock held: the holder runs again before it lets go."""
    fence: str
    """Counts acquisitions; it outlives the lock itself, until retention forgets the thread."""


def lock_keys(thread_id: str) -> LockKeys:
    return LockKeys(key("lock", thread_id), key("wanted", thread_id), key("fence", thread_id))


def _text(value: bytes | str) -> str:
    """Redis answers bytes (RQ needs a connection without decode_responses)."""
    return value.decode() if isinstance(value, bytes) else value


def _deadline(thread: Thread) -> str:
    """The expiries index score of ``thread``: its pending request's deadline, or '' for none."""
    pending = thread.pending
    if pending is None or pending.expires_at is None or thread.status in FINAL:
        return ""
    return repr(pending.expires_at.timestamp())


def _parse_cursor(cursor: str | None) -> tuple[str, str | None]:
    """The highest score a page may start at, and the id of the last thread already shown."""
    if not cursor:
        return "+inf", None
    score, _, last = cursor.partition(":")
    try:
        float(score)
    except ValueError:
        raise ValueError(f"not a cursor this API gave out: {cursor[:40]!r}") from None
    return score, last or None


def _unobserved(before: Thread, after: Thread, event: Event) -> None:
    return None


def _never_owed(thread: Thread, event: Event) -> bool:
    return False


class Store:
    def __init__(
        self,
        connection: redis.Redis,
        owes: Owes = _never_owed,
        retention: float | None = None,
        observe: Observe = _unobserved,
    ) -> None:
        self.redis = connection
        self.owes = owes
        self.observe = observe
        self.retention = int(retention) if retention else 0
        """Seconds an ended thread's log is kept; 0 keeps it for good."""
        self._append = connection.register_script(_APPEND)
        self._bind = connection.register_script(_BIND)
        self.snapshots = Snapshots(connection, lambda thread_id: key("thread", thread_id, "snapshot"))

    def create(self, thread_id: str, agent: str, first: Event) -> Appended:
        """Start a thread with its first event; raises ``ThreadExists`` if the id is taken."""
        result = self.append_if_current(Thread(id=thread_id, agent=agent), first)
        if result is None:
            raise ThreadExists(thread_id)
        return result

    def append(
        self, thread: Thread, event: Event, fence: str | None = None, requires: str | None = None
    ) -> Appended:
        """Append ``event`` after the events ``thread`` holds, catching up on any it lacks.

        Events others appended meanwhile are folded in first, so the result is always the
        stored log; ``event`` goes after them (invariant 4: in order, none lost). With
        ``fence`` (the lock value a worker holds) raises ``LockLost`` if the lock moved on;
        with ``requires`` (a key) raises ``RequirementGone`` unless the key exists.
        """
        while True:
            result = self.append_if_current(thread, event, fence, requires)
            if result is not None:
                return result
            known = len(thread.events)
            thread = self.refresh(thread)
            if any(stored.id == event.id for stored in thread.events[known:]):
                # An earlier try was written but its answer lost (Redis went away): done.
                return Appended(thread=thread, applied=True)

    def append_if_current(
        self, thread: Thread, event: Event, fence: str | None = None, requires: str | None = None
    ) -> Appended | None:
        """Append ``event`` only if nothing was appended since ``thread`` was loaded; None if
        something was (load again and decide again). For events decided on the thread's
        state, such as an expiry that must not land after an answer."""
        folded = reduce(thread, event)
        outcome, value = self._append(
            keys=[
                key("thread", thread.id, "events"),
                key("thread", thread.id, "meta"),
                key("dedupe", event.key or ""),
                key("by-status", thread.status.value),
                key("by-status", folded.status.value),
                key("by-agent", thread.agent),
                key("threads"),
                key("expiries"),
                lock_keys(thread.id).lock,
                key("outbox"),
                key("ended"),
                key("audit"),
                requires or key("nothing"),
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
                fence or "",
                "1" if self.owes(folded, event) else "0",
                event.id,
                self.retention,
                "1" if folded.status in ENDED else "0",
                audit.entry(folded, event) or "",
                "1" if requires else "0",
                audit.KEPT,
                UNLOCKED,
            ],
        )
        if outcome == -2:
            raise LockLost(f"thread {thread.id}: the lock was lost; {event.type} not written")
        if outcome == -3:
            raise RequirementGone(f"thread {thread.id}: {requires} is gone; {event.type} not written")
        if outcome == 0:
            return Appended(thread=thread, applied=False, duplicate_of=_text(value))
        if outcome == -1:
            return None
        self.snapshots.remember(folded)
        self.observe(thread, folded, event)
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
        """The thread as stored: from a snapshot that the log continues, plus the events after
        it (``bot.state.snapshots``), or else replayed from the whole log."""
        recent = self.snapshots.recent(thread_id)
        thread = self._continued(recent) if recent is not None else None
        if thread is None:
            thread = self._load_cold(thread_id)
        self.snapshots.remember(thread)
        return thread

    def _load_cold(self, thread_id: str) -> Thread:
        agent = self.redis.hget(key("thread", thread_id, "meta"), "agent")
        if agent is None:
            raise ThreadNotFound(thread_id)
        stored = self.snapshots.stored(thread_id, _text(agent))
        thread = self._continued(stored) if stored is not None else None
        base = len(stored.events) if stored is not None and thread is not None else 0
        if thread is None:
            raw = self.redis.lrange(key("thread", thread_id, "events"), 0, -1)
            thread = replay(thread_id, _text(agent), [EVENT_ADAPTER.validate_json(item) for item in raw])
        if len(thread.events) - base >= SNAPSHOT_EVERY:
            self.snapshots.save(thread)
        return thread

    def _continued(self, thread: Thread) -> Thread | None:
        """``thread`` with the events stored after its last one folded in, if the log holds that
        event where ``thread`` has it; None if it does not (the log is the truth)."""
        known = len(thread.events)
        raw = cast(list[bytes], self.redis.lrange(key("thread", thread.id, "events"), max(known - 1, 0), -1))
        if known:
            if not raw or event_id(raw[0]) != thread.events[-1].id:
                return None
            raw = raw[1:]
        for item in raw:
            thread = reduce(thread, EVENT_ADAPTER.validate_json(item))
        return thread

    def triggers(self, thread_ids: list[str]) -> dict[str, Event | None]:
        """The first event of each thread (its trigger, for listings), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            pipe.lindex(key("thread", thread_id, "events"), 0)
        return {
            thread_id: EVENT_ADAPTER.validate_json(raw) if raw is not None else None
            for thread_id, raw in zip(thread_ids, pipe.execute(), strict=True)
        }

    def agent_of(self, thread_id: str) -> str | None:
        """The agent of ``thread_id``, from its index entry (one read); None for no such thread."""
        agent = self.redis.hget(key("thread", thread_id, "meta"), "agent")
        return _text(agent) if agent is not None else None

    def summary(self, thread_id: str) -> ThreadSummary:
        found = self._summaries([thread_id])
        if not found:
            raise ThreadNotFound(thread_id)
        return found[0]

    def _summaries(self, thread_ids: list[str]) -> list[ThreadSummary]:
        """The summaries of ``thread_ids`` in one round trip, skipping threads that expired."""
        pipe = self.redis.pipeline(transaction=False)
        for thread_id in thread_ids:
            pipe.hgetall(key("thread", thread_id, "meta"))
        summaries = []
        for thread_id, meta in zip(thread_ids, pipe.execute(), strict=True):
            if not meta or b"status" not in meta:
                continue
            summaries.append(
                ThreadSummary(
                    id=thread_id,
                    agent=_text(meta[b"agent"]),
                    status=Status(_text(meta[b"status"])),
                    version=int(meta[b"version"]),
                    created_at=float(meta[b"created_at"]),
                    updated_at=float(meta[b"updated_at"]),
                )
            )
        return summaries

    def ids(self, status: Status | None = None) -> list[str]:
        """All thread ids, newest first; only those in ``status`` when given. For tests and
        small tools: lists that people page through use ``page``."""
        index = key("threads") if status is None else key("by-status", status.value)
        return [_text(raw) for raw in cast(list[bytes], self.redis.zrange(index, 0, -1, desc=True))]

    def page(
        self,
        status: Status | None = None,
        agent: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Up to ``limit`` threads, newest first, after ``cursor``; reads only that many index
        entries and summaries (with both filters, walks the status index and checks the agent).

        The cursor is the creation score and id of the last thread shown, so threads created
        while someone pages never shift what the next page holds."""
        index = (
            key("by-status", status.value) if status else key("by-agent", agent) if agent else key("threads")
        )
        top, last = _parse_cursor(cursor)
        found: list[ThreadSummary] = []
        skip = 0
        while len(found) < limit:
            window = cast(
                list[tuple[bytes, float]],
                self.redis.zrevrangebyscore(index, top, "-inf", start=skip, num=limit, withscores=True),
            )
            if not window:
                return Page(found, None)
            skip += len(window)
            # Equal scores come in reverse id order: those up to the cursor's id were shown already.
            fresh = [
                (_text(raw), score)
                for raw, score in window
                if last is None or score != float(top) or _text(raw) < last
            ]
            for summary in self._summaries([thread_id for thread_id, _ in fresh]):
                if status and agent and summary.agent != agent:
                    continue
                found.append(summary)
                if len(found) == limit:
                    return Page(found, f"{summary.created_at!r}:{summary.id}")
        return Page(found, None)

    def summaries(self, status: Status | None = None) -> Iterator[ThreadSummary]:
        cursor: str | None = None
        while True:
            page = self.page(status, cursor=cursor, limit=200)
            yield from page.threads
            if page.cursor is None:
                return
            cursor = page.cursor

    def forget_expired(self) -> int:
        """Drop the index entries, routes, receipts, snapshot and lock fence of threads whose
        retention period is over (their log and meta expired by themselves); returns how many.
        Reads only those threads' entries."""
        if not self.retention:
            return 0
        ended = key("ended")
        due = cast(list[bytes], self.redis.zrangebyscore(ended, "-inf", time.time() - self.retention))
        threads = [_text(raw).partition(" ")[::2] for raw in due]
        reading = self.redis.pipeline(transaction=False)
        for thread_id, _ in threads:
            reading.smembers(_aside(thread_id))
        asides = cast(list[set[bytes]], reading.execute())
        pipe = self.redis.pipeline(transaction=False)
        for raw, (thread_id, agent), aside in zip(due, threads, asides, strict=True):
            pipe.zrem(key("threads"), thread_id)
            pipe.zrem(key("by-agent", agent), thread_id)
            for status in ENDED:
                pipe.zrem(key("by-status", status.value), thread_id)
            held = lock_keys(thread_id)
            pipe.delete(
                _aside(thread_id), self.snapshots.location(thread_id), held.wanted, held.fence, *aside
            )
            pipe.zrem(ended, raw)
        pipe.execute()
        return len(due)

    def owed(self, until: float, limit: int = 500) -> list[tuple[str, str]]:
        """Deliveries owed since ``until`` or earlier, as (thread id, event id)."""
        raw = cast(list[bytes], self.redis.zrangebyscore(key("outbox"), "-inf", until, start=0, num=limit))
        return [cast(tuple[str, str], tuple(_text(item).split(" ", 1))) for item in raw]

    def is_owed(self, thread_id: str, event_id: str) -> bool:
        return self.redis.zscore(key("outbox"), f"{thread_id} {event_id}") is not None

    def owe_again(self, thread_id: str, event_id: str, now: float) -> None:
        """Restart the grace period of an owed delivery whose job was just queued again."""
        self.redis.zadd(key("outbox"), {f"{thread_id} {event_id}": now}, xx=True)

    def settle(self, thread_id: str, event_id: str) -> None:
        """The delivery of ``event_id`` is done: nothing owed any more."""
        self.redis.zrem(key("outbox"), f"{thread_id} {event_id}")

    def route(self, route_key: str) -> str | None:
        value = self.redis.get(key("route", route_key))
        return _text(value) if value is not None else None

    def bind_route(self, route_key: str, thread_id: str) -> str:
        """Map a conversation to ``thread_id`` unless it is mapped already; returns the winner.
        The route is the thread's, forgotten with it once its retention period is over."""
        winner = self._bind(keys=[key("route", route_key), _aside(thread_id)], args=[thread_id])
        return _text(winner)

    def receipt(self, event_id: str) -> dict[str, str] | None:
        raw = self.redis.hgetall(key("receipt", event_id))
        return {_text(k): _text(v) for k, v in raw.items()} or None

    def keep_receipt(self, thread_id: str, event_id: str, receipt: Mapping[str, str]) -> None:
        """Keep what the channel needs to find the message it sent for ``event_id`` (the
        thread's, forgotten with it)."""
        pipe = self.redis.pipeline()
        pipe.hset(key("receipt", event_id), items=[part for pair in receipt.items() for part in pair])
        pipe.sadd(_aside(thread_id), key("receipt", event_id))
        pipe.execute()


def _aside(thread_id: str) -> str:
    """The set of a thread's routes and receipts, whose names come from outside."""
    return key("thread", thread_id, "aside")
