"""The runtime as channels see it: conversations mapped to threads, and outbound delivery."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from agent.events import Trigger
from bot.runtime import Runtime
from bot.settings import Settings
from channels.gateway import NotAllowed
from tests.answering import advance_and_answer
from tests.channel_helpers import RecordingChannel, run_deliveries, said


def test_messages_in_one_conversation_go_to_one_thread(runtime: Runtime) -> None:
    first = runtime.converse("test:r1", "deploy", said("ship it"))
    second = runtime.converse("test:r1", "deploy", said("to staging please"))
    other = runtime.converse("test:r2", "deploy", said("ship it"))
    assert first.thread.id == second.thread.id != other.thread.id
    assert [e.text for e in second.thread.events if isinstance(e, Trigger)] == [
        "ship it",
        "to staging please",
    ]
    assert runtime.thread_of("test:r1") == first.thread.id


def test_concurrent_first_messages_of_a_conversation_start_one_thread(runtime: Runtime) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: runtime.converse("test:race", "deploy", said(f"m{n}")), range(8)))
    assert len({r.thread.id for r in results}) == 1
    events = runtime.load(results[0].thread.id).events
    assert sorted(e.text for e in events if isinstance(e, Trigger)) == [f"m{n}" for n in range(8)]
    assert [e.type for e in events].count("model_requested") == 1, "the first step, taken once"


def test_a_redelivered_message_starts_nothing_new(runtime: Runtime) -> None:
    first = runtime.converse("test:r1", "deploy", said("ship it", key="ev-1"))
    again = runtime.converse("test:r1", "deploy", said("ship it", key="ev-1"))
    assert first.applied and not again.applied
    assert [e.type for e in runtime.load(first.thread.id).events] == ["trigger", "model_requested"]


def test_requests_and_decisions_are_delivered_through_the_threads_channel(runtime: Runtime) -> None:
    channel = RecordingChannel()
    runtime.outbound["test"] = channel
    thread_id = runtime.converse("test:r1", "deploy", said("ship it")).thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    run_deliveries(runtime)
    assert channel.shown == [("human_request", None)]
    assert runtime.thread_of("test:reply-to-msg-1") == thread_id, "replies to the request continue the thread"

    runtime.respond(thread_id, thread.pending.request_id, "U2", approved=True)  # U1 asked
    advance_and_answer(runtime, thread_id)
    run_deliveries(runtime)
    # The decision is shown on the request's own message, found again by its receipt.
    assert channel.shown[1] == ("human_response", {"message": "msg-1", "route": "test:reply-to-msg-1"})
    assert [kind for kind, _ in channel.shown] == ["human_request", "human_response", "done"]


def test_the_trigger_that_starts_a_thread_is_delivered_too(runtime: Runtime) -> None:
    channel = RecordingChannel(interests=frozenset({"trigger"}))
    runtime.outbound["test"] = channel
    thread_id = runtime.converse("test:r1", "deploy", said("ship it")).thread.id
    runtime.converse("test:r1", "deploy", said("to staging"))
    run_deliveries(runtime)
    assert [kind for kind, _ in channel.shown] == ["trigger", "trigger"]
    assert runtime.load(thread_id).status.value == "running"


def test_threads_from_channels_without_an_outbound_side_queue_no_deliveries(runtime: Runtime) -> None:
    thread_id = runtime.launch("deploy", "ship it").thread.id
    advance_and_answer(runtime, thread_id)
    assert runtime.outbound_queue.count == 0


def test_a_channel_may_answer_for_a_member_of_a_listed_group(settings: Settings) -> None:
    settings.approvers = ("S-ops",)
    runtime = Runtime.from_settings(settings)
    thread_id = runtime.converse("test:r1", "deploy", said("ship it")).thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    with pytest.raises(NotAllowed, match="U7 may not answer"):
        runtime.respond(thread_id, thread.pending.request_id, "U7", approved=True)
    with pytest.raises(NotAllowed):
        runtime.respond(thread_id, thread.pending.request_id, "U7", approved=True, via="S-other")
    answered = runtime.respond(thread_id, thread.pending.request_id, "U7", approved=True, via="S-ops")
    response = answered.thread.response_to(thread.pending.request_id)
    assert response is not None and (response.responder, response.via) == ("U7", "S-ops")
