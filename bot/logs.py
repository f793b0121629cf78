"""Structured logging: key-value lines for people, JSON lines for log shippers.

Every line names the process that wrote it (``outerloop dev`` interleaves four), and the
thread's id and agent wherever a thread is worked on (``working_on``: a worker's job, a
caller's answer, a delivery, a web request about a thread), so a log shipper can follow one
thread across processes. RQ and aiosmtpd narrate every job and connection at INFO; that
chatter is held to warnings, our own events say what happened instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

QUIET = ("rq.worker", "rq.scheduler", "mail.log", "aiosmtpd")
"""Loggers whose INFO lines repeat what our own events say (a job started, a connection made)."""


def configure(fmt: str = "console", level: int = logging.INFO, process: str | None = None) -> None:
    """Route structlog and stdlib logging (uvicorn, rq) through one renderer on stderr."""
    # Plain tracebacks: with rich or better-exceptions installed, the console renderer's default
    # prints every frame's local variables, settings and their secrets included.
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if process:
        shared.append(_named(process))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


@contextmanager
def working_on(**fields: Any) -> Iterator[None]:
    """Put ``fields`` (``thread_id``, ``agent``, ...) on every log line written in this context,
    the lines of RQ, the lock and the store included; ``about`` adds more as they are learnt.
    On exit the context's fields are what they were before, so a process that works on one
    thread after another (a worker, the scheduler) never names the previous one."""
    before = structlog.contextvars.get_contextvars()
    structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**before)


def about(**fields: Any) -> None:
    """Add ``fields`` to the lines of the enclosing ``working_on`` (the agent, once the thread
    is loaded)."""
    structlog.contextvars.bind_contextvars(**fields)


def short(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters: what the agent said, as a log field."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _named(process: str) -> structlog.typing.Processor:
    def add_process(
        logger: object, method: str, event: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event.setdefault("process", process)
        return event

    return add_process
