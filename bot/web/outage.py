"""Redis outages as the web app answers them: 503 JSON with ``Retry-After``, and one log line each way.

Every route needs Redis, so when it is unreachable every route fails the same way. One
exception handler answers them all with ``{"detail": ...}`` and ``Retry-After`` instead of
a 500 with a traceback; the log gets a warning when an outage starts and a note when
Redis answers again, not a line per request (a client retrying in a loop would otherwise
flood the log exactly when someone is trying to read it).
"""

from __future__ import annotations

import threading
import time

import redis
import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

log = structlog.get_logger(__name__)

OUTAGE_ERRORS: tuple[type[redis.RedisError], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,  # Redis is up but still loading its data
)
RETRY_AFTER = 5
"""Seconds a client is told to wait: long enough not to hammer, short for a restart."""
PROBE_INTERVAL = 1.0
"""During an outage, one ping a second checks whether Redis is back."""


class Outage:
    """Whether Redis is known to be down, so each outage is logged once, start and end."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection
        self.since: float | None = None
        self._lock = threading.Lock()

    def began(self, error: Exception) -> None:
        """A request failed on Redis: if that is news, log it and watch for Redis to come back."""
        with self._lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        log.warning("redis.unavailable", error=f"{type(error).__name__}: {error}", retry_after=RETRY_AFTER)
        threading.Thread(target=self._watch, name="redis-outage-watch", daemon=True).start()

    def _watch(self) -> None:
        """Ping until Redis answers, then log that it is back (whether or not requests come)."""
        while True:
            time.sleep(PROBE_INTERVAL)
            try:
                self.connection.ping()
            except redis.RedisError:
                continue
            with self._lock:
                since, self.since = self.since, None
            log.info("redis.available", down_for=round(time.monotonic() - (since or 0.0), 1))
            return


def install_outage_handler(app: FastAPI, connection: redis.Redis) -> Outage:
    """Answer Redis outages on every route of ``app`` with 503 JSON and ``Retry-After``."""
    outage = Outage(connection)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        outage.began(exc)
        return JSONResponse(
            {"detail": f"the store (Redis) is unavailable; try again in {RETRY_AFTER} seconds"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER)},
        )

    for kind in OUTAGE_ERRORS:
        app.add_exception_handler(kind, unavailable)
    return outage
