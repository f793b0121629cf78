"""Whether a local process answers: the checks ``outerloop dev`` waits on before its banner.

Each check is one short attempt that returns False rather than raising, so a caller polls it.
"""

from __future__ import annotations

import http.client
import smtplib

import redis

TIMEOUT = 1.0
"""Seconds one attempt may take; a part that is starting answers within that or not at all."""


def http_ok(host: str, port: int, path: str) -> bool:
    """Whether ``GET path`` answers 200."""
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def smtp_ehlo(host: str, port: int) -> bool:
    """Whether an SMTP server greets and answers EHLO."""
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as client:
            return client.ehlo()[0] == 250
    except (OSError, smtplib.SMTPException):
        return False


def worker_registered(redis_url: str, pid: int) -> bool:
    """Whether a worker of the pool supervised by process ``pid`` has registered with Redis
    (it then takes jobs); the pool names its workers after their supervisor (``bot.work.pool``)."""
    from rq import Worker

    from bot.work.pool import worker_name

    prefix = worker_name(pid, 0).removesuffix("0")
    connection = redis.Redis.from_url(redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        return any(worker.name.startswith(prefix) for worker in Worker.all(connection=connection))
    except redis.RedisError:
        return False
    finally:
        connection.close()
