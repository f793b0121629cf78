"""Traces of threads for any OpenTelemetry backend: off unless the ``OTEL_*`` variables ask for them.

The switch is the standard variables: tracing is on in a process when ``OTEL_TRACES_EXPORTER`` names
an exporter (not ``none``) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
is set, unless ``OTEL_SDK_DISABLED=true``. Every ``outerloop`` process decides at start
(``configure``, called by the CLI), so web, worker pools, callers, the scheduler and the inbox all
export once the variables are set for them.

This module is all the instrumented places see. Off, it imports nothing of OpenTelemetry (the
``otel`` extra need not even be installed) and each call returns a shared no-op: ``run`` hands back
the worker's ``record`` itself, so a step does no extra work at all. On, the calls go to
``bot.tracing.spans``, which holds the span tree and the ``gen_ai.*`` attributes, and
``bot.tracing.setup``, which builds the exporter from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

import structlog

from bot.tracing.errors import TracingConfigError as TracingConfigError  # re-exported for callers

if TYPE_CHECKING:  # annotations only: every command imports this module, so it stays small
    from datetime import datetime

    from opentelemetry.sdk.trace import TracerProvider

    from agent.definition import AgentSpec
    from agent.events import Error, Event, HumanResponse, ModelDecided
    from agent.loop import Record
    from agent.thread import Thread
    from bot.settings import Settings
    from bot.tracing.spans import Answered, Observe, Spans

log = structlog.get_logger(__name__)

SWITCHES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_spans: Spans | None = None


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces (see the module's docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return any(environ.get(name, "").strip() for name in SWITCHES)


def configure(process: str | None) -> None:
    """Turn tracing on in this process if the environment asks for it (once, at start).

    Without the ``otel`` extra it says so in one warning and the process runs untraced: traces
    are for looking, and a missing package must not stop an inbox or a worker. A value the
    exporter cannot use raises ``TracingConfigError``."""
    if _spans is not None or not wanted(os.environ):
        return
    try:
        from bot.tracing.setup import provider_from_environment
    except ImportError as exc:
        log.warning(
            "tracing.unavailable",
            reason=f"the OTEL_* variables ask for traces but {exc.name} is not installed",
            fix="pip install 'outerloop[otel]'",
        )
        return
    enable(provider_from_environment(process))


def enable(provider: TracerProvider) -> None:
    """Trace to ``provider`` from now on (``configure`` builds one; tests pass an in-memory one)."""
    from bot.tracing.spans import Spans

    global _spans
    _spans = Spans(provider)


def disable() -> None:
    """Stop tracing in this process (tests); spans already ended stay with their exporter."""
    global _spans
    _spans = None


def flush() -> None:
    """Export what is buffered now: for a process that ends with ``os._exit`` (a pool child)."""
    if _spans is not None:
        _spans.flush()


def launched(
    thread_id: str, agent: str, channel: str, at: datetime, source: str | None = None
) -> AbstractContextManager[None]:
    """The thread's root span, from its first event's time ``at`` until it is queued.

    Made once, by whoever created the thread; ``source`` names the thread it was forked from."""
    if _spans is None:
        return nullcontext()
    return _spans.launched(thread_id, agent, channel, at, source)


def _unchanged(record: Record) -> Record:
    return record


_UNTRACED_RUN: AbstractContextManager[Observe] = nullcontext(_unchanged)


def run(thread: Thread) -> AbstractContextManager[Observe]:
    """A worker's run of ``thread`` (``invoke_agent {agent}``), with its tool calls inside."""
    if _spans is None:
        return _UNTRACED_RUN
    return _spans.run(thread)


def _ignore(answer: ModelDecided | Error) -> None:
    return None


_UNTRACED_CHAT: AbstractContextManager[Answered] = nullcontext(_ignore)


def chat(thread_id: str, agent: AgentSpec, settings: Settings) -> AbstractContextManager[Answered]:
    """A caller's model call for ``thread_id`` (``chat {model}``), retries included."""
    if _spans is None:
        return _UNTRACED_CHAT
    return _spans.chat(thread_id, agent, settings)


def delivery(thread_id: str, event: Event, channel: str) -> AbstractContextManager[None]:
    """Showing ``event`` through the thread's channel (Slack, mail)."""
    if _spans is None:
        return nullcontext()
    return _spans.delivery(thread_id, event, channel)


def responded(thread_id: str, agent: str, response: HumanResponse) -> None:
    """A person's answer was recorded: a short span at the moment it was."""
    if _spans is not None:
        _spans.responded(thread_id, agent, response)
