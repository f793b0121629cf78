"""Traces in-process: a deploy thread's spans, captured with the SDK's in-memory exporter.

The thread runs the real runtime, worker and caller code against the local fake Messages API,
with mail as its channel (a maildir), from launch to approval to done; between the approval
request and the answer, tracing starts again with a new provider, as a resumption in another
process would, and the spans must still make one trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from agent.events import Origin, ToolCall
from agent.thread import Status
from bot import tracing
from bot.model.caller import Caller
from bot.runtime import Runtime
from bot.settings import Settings
from bot.tracing.setup import new_provider
from bot.tracing.spans import thread_ids
from bot.work.worker import advance_thread
from tests.answering import advance_and_answer
from tests.channel_helpers import run_deliveries
from tests.fake_anthropic import FakeAnthropic, Reply, message, tool_use_block, tool_use_reply

MODEL = "claude-sonnet-5-5"
"""The model the deploy agent asks for (``OUTERLOOP_MODEL``'s default)."""
BOB = Origin(channel="email", sender="bob@example.com", address={"to": "bob@example.com"})


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    captured = InMemorySpanExporter()
    start_tracing(captured)
    yield captured
    tracing.disable()


def start_tracing(exporter: InMemorySpanExporter, sampler: Sampler | None = None) -> None:
    """Trace to ``exporter`` through a new provider: nothing of an earlier one carries over."""
    provider = new_provider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.disable()
    tracing.enable(provider)


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def mail_runtime(
    env: dict[str, str], fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Runtime:
    more = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url}
    for name, value in {**env, **more, "SMTP_MAILDIR": str(tmp_path / "mail")}.items():
        monkeypatch.setenv(name, value)
    return Runtime.from_settings(Settings())


def cached_reply(name: str, arguments: dict[str, object]) -> Reply:
    body = message(tool_use_block(name, arguments))
    body["usage"] = {
        "input_tokens": 10,
        "output_tokens": 30,
        "cache_read_input_tokens": 80,
        "cache_creation_input_tokens": 5,
    }
    return Reply(200, body)


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_deploy_thread_is_one_trace_with_runs_model_calls_tools_and_deliveries_across_a_resume(
    mail_runtime: Runtime, fake: FakeAnthropic, exporter: InMemorySpanExporter
) -> None:
    rt = mail_runtime
    fake.script(
        tool_use_reply("list_tags", {"limit": 5}),
        cached_reply("deploy", {"tag": "v1.0.0", "environment": "production"}),
        tool_use_reply("done_for_now", {"message": "Deployed v1.0.0 to production."}),
    )
    thread_id = rt.launch("deploy", "deploy v1.0.0 to production", origin=BOB).thread.id
    waiting = advance_and_answer(rt, thread_id)
    assert waiting is not None and waiting.pending is not None
    run_deliveries(rt)

    start_tracing(exporter)  # the answer comes hours later, to other processes
    rt.respond(thread_id, waiting.pending.request_id, "alice", approved=True, channel="api")
    done = advance_and_answer(rt, thread_id)
    assert done is not None and done.status is Status.DONE
    run_deliveries(rt)

    spans = list(exporter.get_finished_spans())
    trace_id, root_id = thread_ids(thread_id)
    assert {span.context.trace_id for span in spans} == {trace_id}
    (root,) = [span for span in spans if span.parent is None]
    assert (root.name, root.context.span_id) == ("launch deploy", root_id)
    assert root.attributes is not None and root.attributes["outerloop.channel"] == "email"

    runs = named(spans, "invoke_agent deploy")
    assert [[event.name for event in span.events] for span in runs] == [
        ["model_requested"],
        ["tool_call", "tool_result", "model_requested"],
        ["human_request"],
        ["tool_call", "tool_result", "model_requested"],
        ["done"],
    ]
    assert all(parent_of(span) == root_id for span in runs)
    assert [dict(span.attributes or {})["outerloop.thread.status"] for span in runs[2:]] == [
        "awaiting_human",
        "running",
        "done",
    ]

    chats = named(spans, f"chat {MODEL}")
    assert len(chats) == 3 and all(parent_of(span) == root_id for span in chats)
    assert all(span.kind is SpanKind.CLIENT for span in chats)
    first, cached = (dict(span.attributes or {}) for span in chats[:2])
    assert first == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": "claude-test",
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_write.input_tokens": 0,
        "gen_ai.response.finish_reasons": ("tool_use",),
        "gen_ai.conversation.id": thread_id,
        "gen_ai.agent.name": "deploy",
        "outerloop.thread.id": thread_id,
        "outerloop.tool": "list_tags",
    }
    usage = ("input_tokens", "cache_read.input_tokens", "cache_write.input_tokens")
    assert [cached[f"gen_ai.usage.{name}"] for name in usage] == [95, 80, 5]

    calls = [event for event in done.events if isinstance(event, ToolCall)]
    tools = [span for span in spans if span.name.startswith("execute_tool ")]
    assert [span.name for span in tools] == ["execute_tool list_tags", "execute_tool deploy"]
    for span, call in zip(tools, calls, strict=True):
        assert span.attributes is not None
        assert (span.attributes["gen_ai.tool.name"], span.attributes["gen_ai.tool.call.id"]) == (
            call.tool,
            call.call_id,
        )
        assert span.attributes["gen_ai.operation.name"] == "execute_tool"
        assert span.status.status_code is StatusCode.UNSET
    assert (parent_of(tools[0]), parent_of(tools[1])) == (runs[1].context.span_id, runs[3].context.span_id)

    (answer,) = named(spans, "respond deploy")
    assert answer.attributes is not None and answer.attributes["outerloop.response.approved"] is True
    assert answer.start_time is not None and tools[1].start_time is not None
    assert answer.start_time < tools[1].start_time
    deliveries = named(spans, "deliver email")
    assert [dict(span.attributes or {})["outerloop.event.type"] for span in deliveries] == [
        "human_request",
        "done",
    ]
    assert all(parent_of(span) == root_id for span in deliveries)


def test_a_fork_is_a_trace_of_its_own_linked_to_its_source(
    runtime: Runtime, exporter: InMemorySpanExporter
) -> None:
    source = runtime.launch("deploy", "deploy v1.0.0").thread.id
    copy = runtime.fork(source, at=1).thread.id

    roots = {span.name: span for span in exporter.get_finished_spans() if span.parent is None}
    assert set(roots) == {"launch deploy", "fork deploy"}
    forked = roots["fork deploy"]
    assert (forked.context.trace_id, forked.context.span_id) == thread_ids(copy)
    assert [(link.context.trace_id, link.context.span_id) for link in forked.links] == [thread_ids(source)]


def test_a_tool_that_fails_ends_its_span_in_error(
    runtime: Runtime, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTERLOOP_DEPLOY_REPO", "/nonexistent")
    broken = Runtime.from_settings(Settings())
    thread_id = broken.launch("deploy", "deploy the latest").thread.id
    advance_and_answer(broken, thread_id)

    (tool,) = named(list(exporter.get_finished_spans()), "execute_tool list_tags")
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes is not None and tool.attributes["error.type"] == "tool"
    assert tool.status.description is None, "the error's message stays in the thread"


def test_a_ratio_sampler_keeps_or_drops_a_thread_whole_in_every_process(
    runtime: Runtime, exporter: InMemorySpanExporter
) -> None:
    start_tracing(exporter, ParentBased(TraceIdRatioBased(0.5)))
    threads = [runtime.launch("deploy", f"deploy v1.0.{n}").thread.id for n in range(30)]
    start_tracing(exporter, ParentBased(TraceIdRatioBased(0.5)))  # the callers' process
    asyncio.run(Caller(runtime).answer_waiting())
    start_tracing(exporter, ParentBased(TraceIdRatioBased(0.5)))  # the workers' process
    for thread_id in threads:
        advance_thread(runtime, thread_id)

    kept: dict[int, list[str]] = {}
    for span in exporter.get_finished_spans():
        kept.setdefault(span.context.trace_id, []).append(span.name)
    assert 0 < len(kept) < len(threads)
    # launched with the first step (a model request), answered, then a worker's run of list_tags
    expected = [
        "chat scripted",
        "execute_tool list_tags",
        "invoke_agent deploy",
        "invoke_agent deploy",
        "launch deploy",
    ]
    assert all(sorted(names) == expected for names in kept.values())
