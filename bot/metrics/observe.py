"""What each stored event, worker step and delivery adds to the metrics.

``recorded`` is the store's observer: it runs in whichever process appended the event (a
worker, the caller, the web app, the scheduler, the inbox), once per applied append, so an
event is counted once however many processes race to write it. Counting never fails an
append: a bug here is logged and the event stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog
from rq import get_current_job

from agent.events import (
    Error,
    Event,
    HumanResponse,
    ModelDecided,
    RequestExpired,
    ToolResult,
    Trigger,
)
from agent.thread import FINAL, Status, Thread
from bot.metrics import instruments as m

log = structlog.get_logger(__name__)

ENDED = frozenset({Status.DONE, *FINAL})
SCRIPTED = "scripted"
"""The model label of answers no API named (a scripted model's)."""


def recorded(before: Thread, after: Thread, event: Event) -> None:
    """Count what ``event``, just appended to ``before`` and folded into ``after``, says."""
    try:
        _count(before, after, event)
    except Exception:  # counting must not fail the append it follows
        log.exception("metrics.count_failed", thread_id=after.id, event_type=event.type)


def _count(before: Thread, after: Thread, event: Event) -> None:
    agent = after.agent
    if not before.events and isinstance(event, Trigger):
        m.threads_started.labels(agent, event.origin.channel).inc()
    if after.status is not before.status and after.status in ENDED:
        m.threads_finished.labels(agent, after.status.value).inc()
    match event:
        case ModelDecided():
            _model_answer(agent, event)
        case Error(source="model"):
            m.model_errors.labels(agent).inc()
        case ToolResult() | Error() if (call := before.open_call) and call.call_id == event.call_id:
            outcome = "ok" if isinstance(event, ToolResult) else _failure(event)
            m.tool_calls.labels(call.tool, outcome).inc()
            if outcome != "interrupted":  # how long it ran is unknown: only when it was found gone
                m.tool_seconds.labels(call.tool).observe(max(0.0, (event.at - call.at).total_seconds()))
        case HumanResponse(under=None) if (asked := before.pending) and after.pending is None:
            if asked.request_id == event.request_id:  # a person settled it (not a standing grant)
                waited = max(0.0, (event.at - asked.at).total_seconds())
                m.human_answer_seconds.labels(agent, asked.kind, _answer(event)).observe(waited)
        case RequestExpired():
            m.requests_expired.labels(agent, event.outcome).inc()


def _failure(error: Error) -> str:
    return "interrupted" if error.source == "interrupted" else "error"


def _answer(response: HumanResponse) -> str:
    if response.approved is None:
        return "answered"
    return "approved" if response.approved else "rejected"


def _model_answer(agent: str, decided: ModelDecided) -> None:
    model = decided.model or SCRIPTED
    m.model_calls.labels(agent, model).inc()
    m.model_seconds.labels(model).observe(decided.latency)
    usage = decided.usage
    for kind, tokens in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_input_tokens),
        ("cache_write", usage.cache_creation_input_tokens),
    ):
        m.model_tokens.labels(agent, model, kind).inc(tokens)


@contextmanager
def steps(agent: str, check: Callable[[], None]) -> Iterator[Callable[[], None]]:
    """Wrap the loop's ``check``, which runs before every step, so that each call ends the step
    before it and starts the next: every step the loop ran is counted and timed."""
    started: float | None = None

    def finish() -> None:
        nonlocal started
        if started is not None:
            m.steps.labels(agent).inc()
            m.step_seconds.labels(agent).observe(time.monotonic() - started)
            started = None

    def checked() -> None:
        nonlocal started
        finish()
        check()
        started = time.monotonic()

    try:
        yield checked
    finally:
        finish()


@contextmanager
def delivering(channel: str) -> Iterator[None]:
    """Count one delivery attempt: delivered, or failed and retried by RQ, or failed for good."""
    try:
        yield
    except Exception:
        job = get_current_job()
        retried = job is not None and bool(job.retries_left)
        m.deliveries.labels(channel, "retried" if retried else "failed").inc()
        raise
    m.deliveries.labels(channel, "delivered").inc()


@contextmanager
def running(queue: str) -> Iterator[None]:
    """Mark this worker process busy on ``queue`` while a job runs (a live gauge: a process that
    dies is dropped from it when its supervisor reaps it)."""
    with m.jobs_running.labels(queue).track_inprogress():
        yield
