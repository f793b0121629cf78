"""One worker per thread at a time (invariant 4), without lost wake-ups, through Redis blips.

A worker that finds the thread locked leaves a *wanted* mark instead of waiting; the
holder checks the mark atomically as it lets go and runs again if it is set. Both
steps are Lua scripts, so no event can slip in between "nothing left" and "unlock".

The lock's value names its holder (``bot.state.liveness``: worker, process, a random token), and
every append the holder makes is fenced by that value (``bot.state.store``), so a worker that
lost the lock writes nothing more. Each acquisition also counts up the thread's *fence*
number. The lock has a TTL, renewed while the holder works. Renewal survives Redis
outages: it retries with backoff, and when Redis answers again after the lock expired, it
takes the lock back if the fence number shows that nobody took it meanwhile. Only when
somebody did is the lock lost, and ``check`` tells the job so before its next model call
or tool run.
"""

from __future__ import annotations

import threading
from types import TracebackType

import redis
import structlog
from redis.client import Pipeline

from bot.state import liveness
from bot.state.liveness import Holder
from bot.state.round_trips import Along, together
from bot.state.store import LockLost, lock_keys

log = structlog.get_logger(__name__)

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return redis.call('INCR', KEYS[3])
end
redis.call('SET', KEYS[2], '1')
return 0
"""

_TAKE_OVER = """
if redis.call('GET', KEYS[1]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return redis.call('INCR', KEYS[3])
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
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not value and redis.call('GET', KEYS[3]) == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

RETRY_CAP = 1.0
"""Longest wait between two tries to reach Redis while renewing: short, so that a lock that
expired during an outage is taken back before a sweep hands the thread to someone else."""


class ThreadLock:
    """``with ThreadLock(...) as lock:`` then ``while lock.held: ...; lock.release_or_continue()``."""

    def __init__(self, connection: redis.Redis, thread_id: str, holder: Holder, ttl: float = 30.0) -> None:
        self.redis = connection
        self.thread_id = thread_id
        self.ttl_ms = int(ttl * 1000)
        self.owner = holder
        self.value = str(holder)
        """What the lock key holds while we hold it; our appends are fenced by it."""
        self.keys = list(lock_keys(thread_id))
        self.held = False
        self.fence = 0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, along: Along | None = None) -> bool:
        """Take the lock, or mark the thread as wanted by whoever holds it; ``along``'s writes
        go first, in the same round trip (``bot.state.round_trips``)."""
        return self._start(int(together(self.redis, along, self._acquire)))

    def _acquire(self, pipe: Pipeline) -> None:
        pipe.eval(_ACQUIRE, 3, *self.keys, self.value, self.ttl_ms)

    def take_over(self, previous: str) -> bool:
        """Take the lock from a holder known to be gone, if it still holds the value ``previous``."""
        return self._start(int(self.redis.eval(_TAKE_OVER, 3, *self.keys, self.value, self.ttl_ms, previous)))

    def holder(self) -> str | None:
        """The value of whoever holds the lock now, if anybody."""
        value = self.redis.get(self.keys[0])
        return value.decode() if isinstance(value, bytes) else value

    def _start(self, fence: int) -> bool:
        self.held = fence > 0
        if self.held:
            self.fence = fence
            self._vouch()
            self._renewer = threading.Thread(target=self._renew, daemon=True, name=f"lock-{self.thread_id}")
            self._renewer.start()
        return self.held

    def check(self) -> None:
        """Raise ``LockLost`` if the renewer found the lock taken by somebody else."""
        if self._lost.is_set():
            raise LockLost(f"lost the lock on thread {self.thread_id}")

    def reclaim(self) -> bool:
        """After an append was refused: take the lock back if nobody took it since it expired
        (Redis was away longer than the TTL); False, and lost for good, if somebody did."""
        if self._renew_once():
            return True
        self._lost.set()
        return False

    def release_or_continue(self, along: Along | None = None) -> bool:
        """Unlock unless the thread was wanted meanwhile; True means "run again, still locked".
        ``along``'s writes go first, in the same round trip."""
        outcome = together(self.redis, along, self._release)
        if outcome == -1:
            self._stop_renewing()
            raise LockLost(f"lock on thread {self.thread_id} expired while held")
        if outcome == 1:
            return True
        self._stop_renewing()
        return False

    def _release(self, pipe: Pipeline) -> None:
        pipe.eval(_RELEASE, 2, *self.keys[:2], self.value, self.ttl_ms)

    def _renew(self) -> None:
        interval = self.ttl_ms / 3000
        while not self._stop.wait(interval):
            if not self._renew_once():
                self._lost.set()
                log.warning("lock.lost", thread_id=self.thread_id)
                return

    def _renew_once(self) -> bool:
        """Renew, retrying transient errors until Redis answers; False once somebody else holds it."""
        delay = 0.05
        while not self._stop.is_set():
            try:
                outcome = self.redis.eval(_RENEW, 3, *self.keys, self.value, self.ttl_ms, self.fence)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("lock.renew_retry", thread_id=self.thread_id, error=type(exc).__name__)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_CAP)
                continue
            if outcome == 2:
                log.info("lock.taken_back", thread_id=self.thread_id)
            if outcome:
                self._vouch()
            return bool(outcome)
        return True

    def _vouch(self) -> None:
        """Outside RQ nobody vouches for this process (``bot.state.liveness``): it does so itself."""
        if self.owner.vouches_for_itself:
            liveness.vouch(self.redis, self.owner.worker, self.owner.pid, self.ttl_ms / 1000)

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
            try:
                self.redis.eval(_UNLOCK, 1, self.keys[0], self.value)
            except redis.RedisError:
                # Redis away: the lock expires by its TTL; raising here would hide the real error.
                log.warning("lock.unlock_failed", thread_id=self.thread_id)
