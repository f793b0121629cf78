"""What ``GET /healthz`` knows: whether we can serve, and for an authenticated caller, why not.

Anyone may ask whether the app is ok (load balancers, uptime checks); the details (where
Redis is, which versions run) help an attacker as much as an operator, so only a caller
with an API token gets them. Nothing here ever holds a password: the Redis address is
rebuilt from host, port and database, never taken from ``REDIS_URL``.
"""

from __future__ import annotations

import platform
from importlib.metadata import version
from typing import Any

import redis


def health_report(connection: redis.Redis) -> dict[str, Any]:
    """``{"status": "ok" | "unavailable", ...details}``; the caller decides who sees the details."""
    pool = connection.connection_pool.connection_kwargs
    store: dict[str, Any] = {
        "address": f"{pool.get('host', pool.get('path', '?'))}:{pool.get('port', '')}/{pool.get('db', 0)}"
    }
    try:
        info = connection.info("server")
    except redis.RedisError as exc:
        store.update(reachable=False, error=f"{type(exc).__name__}: {exc}")
    else:
        store.update(reachable=True, version=info.get("redis_version"))
    return {
        "status": "ok" if store["reachable"] else "unavailable",
        "outerloop": version("outerloop"),
        "python": platform.python_version(),
        "redis": store,
    }
