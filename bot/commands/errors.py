"""How the CLI fails: one line naming what to do, never a traceback.

The typed errors are imported when a command fails, not when the CLI starts: importing the
kernel and the store costs more than ``outerloop --help`` should.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from bot.runtime import Runtime
    from bot.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
CONNECT_TIMEOUT = 2.0
"""Seconds the CLI waits for Redis to accept a connection before saying it is not there."""


def _user_errors() -> tuple[type[Exception], ...]:
    from agent.definition import UnknownAgent
    from bot.settings import MissingSetting
    from bot.state.store import ThreadNotFound
    from channels.config import ConfigError
    from channels.gateway import Conflict, NotAllowed

    return (
        ThreadNotFound,
        UnknownAgent,
        Conflict,
        NotAllowed,
        MissingSetting,
        ConfigError,
        LookupError,
        ValueError,
    )


def friendly_errors(command: F) -> F:
    """Turn the runtime's typed errors into a one-line message and exit status 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                raise click.ClickException(str(exc)) from exc
            raise

    return wrapper  # type: ignore[return-value]


def connect(settings: Settings) -> Runtime:
    """The runtime, once its Redis answers; otherwise one line saying what to do."""
    import redis

    from bot.runtime import Runtime
    from bot.settings import DEV_REDIS_URL_FILE

    url = settings.require_redis_url()
    probe = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)
    try:
        probe.ping()
    except redis.RedisError as exc:
        if settings.redis_url:
            raise click.ClickException(
                f"Redis at REDIS_URL does not answer ({exc}); start it or fix REDIS_URL"
            ) from exc
        raise click.ClickException(
            f"{DEV_REDIS_URL_FILE} names {url}, but nothing answers there: `outerloop dev` is not running "
            f"in this directory. Start it, or delete {DEV_REDIS_URL_FILE} if it was left by a crash."
        ) from exc
    finally:
        probe.close()
    return Runtime.from_settings(settings)
