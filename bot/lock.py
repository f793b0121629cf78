"""One worker per thread at a time (invariant 4), without lost wake-ups.

A worker that finds the thread locked leaves a *wanted* mark instead of waiting; the
holder checks the mark atomically as it lets go and runs again if it is set. Both
steps are Lua scripts, so no event can slip in between "nothing left" and "unlock".
The lock has a TTL, renewed while the holder works, so a dead worker's lock expires
and the thread is picked up again (see ``bot.recovery``).
"""

from __future__ import annotations

import threading
from types import TracebackType

import redis

from agent.events import new_id
from bot.store import key

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1')
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
return 0
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class LockLost(RuntimeError):
    """The lock expired and someone else may be advancing the thread."""


class ThreadLock:
    """``with ThreadLock(...) as lock:`` then ``while lock.held: ...; lock.release_or_continue()``."""

    def __init__(self, connection: redis.Redis, thread_id: str, ttl: float = 30.0) -> None:
        self.redis = connection
        self.thread_id = thread_id
        self.ttl_ms = int(ttl * 1000)
        self.token = new_id()
        self.keys = [key("lock", thread_id), key("wanted", thread_id)]
        self.held = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lock, or mark the thread as wanted by whoever holds it."""
        self.held = bool(self.redis.eval(_ACQUIRE, 2, *self.keys, self.token, self.ttl_ms))
        if self.held:
            self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"lock-{self.thread_id}")
            self._renewer.start()
        return self.held

    def release_or_continue(self) -> bool:
        """Unlock unless the thread was wanted meanwhile; True means "run again, still locked"."""
        outcome = self.redis.eval(_RELEASE, 2, *self.keys, self.token, self.ttl_ms)
        if outcome == -1:
            self._stop_renewing()
            raise LockLost(f"lock on thread {self.thread_id} expired while held")
        if outcome == 1:
            return True
        self._stop_renewing()
        return False

    def _renew(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            if not self.redis.eval(_RENEW, 1, self.keys[0], self.token, self.ttl_ms):
                return

    def _stop_renewing(self) -> None:
        self.held = False
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join()

    def __enter__(self) -> ThreadLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # On an exception, let go without looking at the wanted mark: the job will be
        # retried, and a fresh holder will see every event anyway.
        if self.held:
            self._stop_renewing()
            self.redis.eval(_UNLOCK, 1, self.keys[0], self.token)
