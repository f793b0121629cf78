"""A rate limit for one API key that every caller process shares, kept in Redis.

A token bucket: ``rate`` calls a minute, up to ``burst`` at once after a quiet spell. Taking
a token is one Lua script that reads Redis's own clock, so callers on different machines
agree without agreeing on the time. When the API answers 429 or 529 with ``retry-after``,
``hold`` stops every caller using the key for that long, not just the one that was told.
"""

from __future__ import annotations

import hashlib

import redis

from bot.state.store import key

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local held = redis.call('PTTL', KEYS[2])
if held > 0 then return held end
local rate = tonumber(ARGV[1]) / 60000
local burst = tonumber(ARGV[2])
if rate <= 0 then return 0 end
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate) + 1000)
return wait
"""

_HOLD = """
local held = redis.call('PTTL', KEYS[1])
if held < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


def account(api_key: str | None) -> str:
    """A name for the account behind ``api_key`` that says nothing about the key."""
    return hashlib.sha256((api_key or "scripted").encode()).hexdigest()[:12]


class RateLimit:
    """``wait = limit.take()``: 0 to call now, else the seconds to wait before asking again."""

    def __init__(
        self, connection: redis.Redis, account: str, per_minute: float, burst: int | None = None
    ) -> None:
        self.per_minute = per_minute
        self.burst = burst if burst is not None else max(1, int(per_minute / 60))
        self.keys = [key("rate", account), key("rate", account, "held")]
        # Sent by digest (EVALSHA): each call asks, so the script's text is not sent each time.
        self._take = connection.register_script(_TAKE)
        self._hold = connection.register_script(_HOLD)

    def take(self) -> float:
        """Take a token if one is free; the seconds until one is (or a hold ends) otherwise.

        A token is taken only when the answer is 0, so a caller that waits asks again."""
        waited = int(self._take(keys=self.keys, args=[self.per_minute, self.burst]))
        return waited / 1000

    def hold(self, seconds: float) -> None:
        """No caller uses the key for ``seconds`` (the API said so), unless a longer hold is on."""
        self._hold(keys=[self.keys[1]], args=[max(1, int(seconds * 1000))])
