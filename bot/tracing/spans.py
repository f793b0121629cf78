"""The spans of a thread's trace, with the OpenTelemetry GenAI semantic conventions (``gen_ai.*``).

One trace per thread, whatever process, worker or day a span comes from: the trace id and the
root span's id are derived from the thread id (``thread_ids``), so no process needs to be told
them and nothing is stored for them. A random thread id (a UUID4) gives a random trace id, so
ids stay unique and ratio samplers still see random bits. Storing a ``traceparent`` at launch
would have worked too, but would put tracing state in the thread's log (or beside it) that
every process must then read before its first span, and that forks, imports and threads made
before tracing was on would lack; deriving it needs nothing, and ``reduce`` and the events stay
exactly as they were (the log is the state).

The tree:

- ``launch {agent}`` (or ``fork {agent}``), the root, made once by the process that created the
  thread, from its trigger's time until it is queued;
- ``invoke_agent {agent}``, one per worker run of the thread, with a span event per event it
  recorded and an ``execute_tool {tool}`` child per tool it ran;
- ``chat {model}``, one per model call, made by the caller that answered it, retries included;
- ``deliver {channel}``, one per event shown through Slack or mail;
- ``respond {agent}``, when a person's answer was recorded.

All but the root are children of the root, which they name by its derived id (a remote parent),
so a run after a resumption hours later lands in the same trace as the launch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import datetime

from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from agent.definition import AgentSpec
from agent.events import Error, Event, HumanResponse, ModelDecided, ToolCall, ToolResult
from agent.loop import Record
from agent.thread import Thread
from bot.model.choice import provider_and_model
from bot.settings import Settings

Observe = Callable[[Record], Record]
"""Wraps a worker's ``record``: the events of a run become tool spans and span events."""
Answered = Callable[[ModelDecided | Error], None]
"""Tells a model call's span what came back: model, usage and finish reason, or the error."""
SCOPE = "outerloop"
_SALT = b"outerloop trace\0"
_forced: ContextVar[tuple[int, int] | None] = ContextVar("outerloop_forced_ids", default=None)


def thread_ids(thread_id: str) -> tuple[int, int]:
    """The thread's trace id and its root span's id: the first 16 and next 8 bytes of a hash."""
    digest = hashlib.sha256(_SALT + thread_id.encode()).digest()
    return int.from_bytes(digest[:16], "big") or 1, int.from_bytes(digest[16:24], "big") or 1


def root_span_context(thread_id: str, sampled: bool = True) -> SpanContext:
    """The thread's root span as any process can name it, to make children of it or link to it."""
    trace_id, span_id = thread_ids(thread_id)
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)


class ThreadIds(IdGenerator):
    """Random ids, except while a thread's root span is started: then the thread's derived ones."""

    def __init__(self) -> None:
        self.random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = _forced.get()
        return forced[1] if forced is not None else self.random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced.get()
        return forced[0] if forced is not None else self.random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return True  # derived from a UUID4 by a hash, or random


def _thread_attributes(thread_id: str, agent: str) -> dict[str, str]:
    return {"gen_ai.conversation.id": thread_id, "gen_ai.agent.name": agent, "outerloop.thread.id": thread_id}


class Spans:
    """Makes the spans of thread traces on ``provider`` (see the module's docstring)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)

    def root_context(self, thread_id: str) -> context.Context:
        """A context whose current span is the thread's root. Whether the root is sampled is asked
        of the provider's sampler as for a root span; with ``OTEL_TRACES_SAMPLER=traceidratio``
        the answer hangs on the trace id alone, so every process keeps or drops a thread alike."""
        trace_id = thread_ids(thread_id)[0]
        # Asked as for a span without a parent (not whatever span is current here), like the root.
        decision = self.provider.sampler.should_sample(context.Context(), trace_id, "thread").decision
        sampled = decision is Decision.RECORD_AND_SAMPLE
        return trace.set_span_in_context(trace.NonRecordingSpan(root_span_context(thread_id, sampled)))

    def flush(self) -> None:
        self.provider.force_flush()

    @contextmanager
    def launched(
        self, thread_id: str, agent: str, channel: str, at: datetime, source: str | None
    ) -> Iterator[None]:
        attributes = {**_thread_attributes(thread_id, agent), "outerloop.channel": channel}
        links = []
        if source is not None:
            attributes["outerloop.thread.forked_from"] = source
            links.append(Link(root_span_context(source)))
        token = _forced.set(thread_ids(thread_id))
        try:
            span = self.tracer.start_span(
                f"{'fork' if source else 'launch'} {agent}",
                context=context.Context(),  # no parent: this is the root
                attributes=attributes,
                links=links,
                start_time=int(at.timestamp() * 1e9),
            )
        finally:
            _forced.reset(token)
        with trace.use_span(span, end_on_exit=True):
            yield

    @contextmanager
    def run(self, thread: Thread) -> Iterator[Observe]:
        attributes = {**_thread_attributes(thread.id, thread.agent), "gen_ai.operation.name": "invoke_agent"}
        with self.tracer.start_as_current_span(
            f"invoke_agent {thread.agent}", context=self.root_context(thread.id), attributes=attributes
        ) as span:
            run = RunTrace(self.tracer, span, thread)
            try:
                yield run.observe
            finally:
                run.close()

    @contextmanager
    def chat(self, thread_id: str, agent: AgentSpec, settings: Settings) -> Iterator[Answered]:
        provider, model = provider_and_model(agent, settings)
        attributes = {
            **_thread_attributes(thread_id, agent.name),
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,  # the name before semantic conventions 1.37, for older backends
            "gen_ai.request.model": model,
        }
        with self.tracer.start_as_current_span(
            f"chat {model}", context=self.root_context(thread_id), kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield lambda answer: _answered(span, answer)

    @contextmanager
    def delivery(self, thread_id: str, event: Event, channel: str) -> Iterator[None]:
        attributes = {
            "outerloop.thread.id": thread_id,
            "outerloop.channel": channel,
            "outerloop.event.type": event.type,
            "outerloop.event.id": event.id,
        }
        parent = self.root_context(thread_id)
        with self.tracer.start_as_current_span(
            f"deliver {channel}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        ):
            yield

    def responded(self, thread_id: str, agent: str, response: HumanResponse) -> None:
        attributes: dict[str, str | bool] = {
            **_thread_attributes(thread_id, agent),
            "outerloop.request.id": response.request_id,
            "outerloop.response.door": response.channel or "",
        }
        if response.approved is not None:
            attributes["outerloop.response.approved"] = response.approved
        parent = self.root_context(thread_id)
        self.tracer.start_span(f"respond {agent}", context=parent, attributes=attributes).end()


def _answered(span: Span, answer: ModelDecided | Error) -> None:
    """The response attributes of a ``chat`` span. Anthropic counts cached input apart from
    ``input_tokens``; the conventions count it in ``gen_ai.usage.input_tokens``, and name what
    Anthropic calls cache creation ``cache_write`` (the GenAI conventions' registry since they
    moved to their own repository)."""
    if isinstance(answer, Error):
        _failed(span, answer)
        return
    usage = answer.usage
    cached = usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    span.set_attributes(
        {
            "gen_ai.usage.input_tokens": usage.input_tokens + cached,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
            "gen_ai.usage.cache_write.input_tokens": usage.cache_creation_input_tokens,
            "outerloop.tool": answer.tool,
        }
    )
    if answer.model:
        span.set_attribute("gen_ai.response.model", answer.model)
    if answer.stop_reason:
        span.set_attribute("gen_ai.response.finish_reasons", [answer.stop_reason])


def _failed(span: Span, error: Error) -> None:
    """Mark ``span`` failed with the error's kind and event id, not its message: a tool's message
    can hold whatever its command printed, and spans leave the thread's content in the thread."""
    span.set_attributes({"error.type": error.source, "outerloop.event.id": error.id})
    span.set_status(Status(StatusCode.ERROR))


class RunTrace:
    """One worker run's span, and the span of the tool it is running, seen through ``record``.

    A tool runs between its ``tool_call`` and its ``tool_result`` (or ``error``) being recorded
    (``agent.loop``), so the kernel needs no hook: the tool's span starts once its call is stored
    and ends when its outcome is handed to ``record``, and is the current span meanwhile, so
    spans a tool's own instrumented libraries make are its children."""

    def __init__(self, tracer: trace.Tracer, span: Span, thread: Thread) -> None:
        self.tracer = tracer
        self.span = span
        self.status = thread.status
        self.tool: tuple[str, Span, Token[context.Context]] | None = None
        """The open tool call: its id, its span, and the token to detach its context with."""

    def observe(self, record: Record) -> Record:
        def recorded(event: Event) -> Thread:
            if isinstance(event, ToolResult | Error) and self.tool and self.tool[0] == event.call_id:
                self._end_tool(event)
            thread = record(event)
            self.status = thread.status
            self.span.add_event(event.type, {"outerloop.event.id": event.id})
            if isinstance(event, ToolCall):
                self._start_tool(event)
            return thread

        return recorded

    def _start_tool(self, call: ToolCall) -> None:
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.tool,
            "gen_ai.tool.call.id": call.call_id,
        }
        span = self.tracer.start_span(f"execute_tool {call.tool}", attributes=attributes)
        self.tool = (call.call_id, span, context.attach(trace.set_span_in_context(span)))

    def _end_tool(self, outcome: ToolResult | Error | None) -> None:
        assert self.tool is not None
        _, span, token = self.tool
        self.tool = None
        context.detach(token)
        if isinstance(outcome, Error):
            _failed(span, outcome)
        elif outcome is None:
            span.set_status(Status(StatusCode.ERROR, "the run ended before the tool's outcome was recorded"))
        span.end()

    def close(self) -> None:
        if self.tool is not None:
            self._end_tool(None)
        self.span.set_attribute("outerloop.thread.status", self.status.value)
