"""The threads waiting on the model, and which caller process holds each (``outerloop caller``).

A thread asks at most one thing of the model at a time (``Thread.deciding``), so the queue
holds thread ids; the request itself is read from the thread's log when it is answered.

- ``asking`` sorted set: threads whose request no caller holds, scored by when they asked;
- ``claims`` hash: thread id -> the holder (``bot.state.liveness``) of the caller answering it.

Claiming moves a thread from ``asking`` to ``claims`` in one script, so two callers never
hold one request. A claim is dropped once the answer is recorded; a claim whose holder is
known to be gone goes back to ``asking`` (``requeue_gone``), the same rule as for tool calls.
Posting is idempotent and never re-posts a claimed thread, so a worker may post again on
every wake-up: that is how a request whose post was lost with a crash is found again.
"""

from __future__ import annotations

import time

import redis

from bot.state import liveness
from bot.state.liveness import Holder
from bot.state.round_trips import Along
from bot.state.store import key

ASKING = key("asking")
CLAIMS = key("claims")

_POST = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
return redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
"""

_CLAIM = """
local taken = redis.call('ZPOPMIN', KEYS[1], ARGV[1])
local ids = {}
for i = 1, #taken, 2 do
  redis.call('HSET', KEYS[2], taken[i], ARGV[2])
  ids[#ids + 1] = taken[i]
end
return ids
"""

_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == '1' then redis.call('ZADD', KEYS[1], 'NX', ARGV[4], ARGV[1]) end
return 1
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def post(connection: redis.Redis, thread_id: str) -> bool:
    """Ask a caller to answer the thread's model request; False if one is queued or held."""
    return bool(connection.eval(_POST, 2, ASKING, CLAIMS, thread_id, time.time()))


def posting(thread_id: str) -> Along:
    """``post``, as a write that rides along another command (``bot.state.round_trips``)."""
    return lambda pipe: pipe.eval(_POST, 2, ASKING, CLAIMS, thread_id, time.time())


def releasing(thread_id: str, holder: str, again: bool = False) -> Along:
    """``release``, as a write that rides along another command (``bot.state.round_trips``)."""
    return lambda pipe: pipe.eval(
        _RELEASE, 2, ASKING, CLAIMS, thread_id, holder, "1" if again else "0", time.time()
    )


def claim(connection: redis.Redis, holder: str, count: int) -> list[str]:
    """Take up to ``count`` waiting threads, oldest first, for ``holder``."""
    if count <= 0:
        return []
    taken = connection.eval(_CLAIM, 2, ASKING, CLAIMS, count, holder)
    return [_text(thread_id) for thread_id in taken]


def release(connection: redis.Redis, thread_id: str, holder: str, again: bool = False) -> bool:
    """Drop ``holder``'s claim on the thread (``again``: and queue it for another try)."""
    outcome = connection.eval(
        _RELEASE, 2, ASKING, CLAIMS, thread_id, holder, "1" if again else "0", time.time()
    )
    return bool(outcome)


def is_waiting(connection: redis.Redis, thread_id: str) -> bool:
    """Whether the thread's request is queued or held by a caller."""
    pipe = connection.pipeline(transaction=False)
    pipe.zscore(ASKING, thread_id)
    pipe.hexists(CLAIMS, thread_id)
    queued, held = pipe.execute()
    return queued is not None or bool(held)


def requeue_gone(connection: redis.Redis, asking: Holder) -> list[str]:
    """Queue again the threads held by callers known to be gone; returns their ids."""
    held = {_text(t): _text(h) for t, h in connection.hgetall(CLAIMS).items()}
    gone: dict[str, bool] = {}
    requeued = []
    for thread_id, holder in held.items():
        if holder not in gone:
            gone[holder] = liveness.is_gone(connection, holder, asking)
        if gone[holder] and release(connection, thread_id, holder, again=True):
            requeued.append(thread_id)
    return requeued


def waiting(connection: redis.Redis) -> int:
    """How many threads wait on the model: queued or held."""
    pipe = connection.pipeline(transaction=False)
    pipe.zcard(ASKING)
    pipe.hlen(CLAIMS)
    queued, held = pipe.execute()
    return int(queued) + int(held)
