"""Requests nobody answers in time: reminders and escalations in the thread, time-outs on the message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.events import ExpiryOutcome, HumanRequest, HumanResponse, ProposedCall, RequestExpired
from agent.thread import Thread
from bot.runtime import Runtime
from channels.slack.inbound import route_key
from tests.fake_slack import TEAM, FakeSlack
from tests.services import wait_for
from tests.slack.signed import ALICE, BOB, CHANNEL, OPS, SignedSlack, deliver_all, mention

DEADLINE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def requested(slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack) -> tuple[Thread, dict[str, Any]]:
    """A Slack thread whose approval request (alice may answer) is posted with a deadline."""
    start = mention("deploy the latest")
    slack.event(start)
    thread_id = runtime.thread_of(route_key(TEAM, CHANNEL, start["ts"]))
    assert thread_id is not None
    request = HumanRequest(
        request_id="r1",
        kind="approval",
        text="Approve deploy?",
        call=ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0", "environment": "staging"}),
        approvers=(ALICE,),
        expires_at=DEADLINE,
    )
    thread = runtime.record(runtime.load(thread_id), request).thread
    deliver_all(runtime)
    return thread, fake_slack.posts()[-1]


def expired(outcome: ExpiryOutcome, approvers: tuple[str, ...] = (), stage: int = 0) -> RequestExpired:
    return RequestExpired(
        request_id="r1",
        deadline=DEADLINE + stage * HOUR,
        outcome=outcome,
        approvers=approvers,
        expires_at=None if outcome == "timed_out" else DEADLINE + (stage + 1) * HOUR,
    )


def responders(runtime: Runtime, thread_id: str) -> list[tuple[str, str | None]]:
    return [(e.responder, e.via) for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]


def test_reminders_and_escalations_are_said_in_the_thread_and_move_the_buttons_to_who_is_asked_now(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, post = requested(slack, runtime, fake_slack)
    runtime.record(thread, expired("reminded", (ALICE,)))
    deliver_all(runtime)
    reminder = fake_slack.posts()[-1]
    assert reminder["thread_ts"] == post["thread_ts"]
    assert (
        reminder["text"]
        == f":alarm_clock: Reminder: the request above still waits for an answer from <@{ALICE}>."
    )

    runtime.record(runtime.load(thread.id), expired("escalated", (OPS,), stage=1))
    deliver_all(runtime)
    assert fake_slack.posts()[-1]["text"].endswith(f"now goes to <!subteam^{OPS}>.")
    update = fake_slack.calls_to("chat.update")[-1]
    assert update.params["ts"] == post["ts"]
    blocks = json.dumps(update.params["blocks"])
    assert f"Who may answer: <!subteam^{OPS}>" in blocks and '"actions"' in blocks

    slack.approve(post, ALICE)
    wait_for(lambda: fake_slack.calls_to("chat.postEphemeral"), "alice's refusal: the request moved on")
    slack.approve(post, BOB)
    assert responders(runtime, thread.id) == [(BOB, OPS)]


def test_a_timed_out_request_loses_its_buttons_and_a_late_click_changes_nothing(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, post = requested(slack, runtime, fake_slack)
    runtime.record(thread, expired("timed_out"))
    deliver_all(runtime)
    [update] = fake_slack.calls_to("chat.update")
    assert update.params["ts"] == post["ts"]
    assert "actions" not in [block["type"] for block in update.params["blocks"]]
    assert "the request timed out" in json.dumps(update.params["blocks"])

    slack.approve(post, ALICE)
    [note] = wait_for(lambda: fake_slack.calls_to("chat.postEphemeral"), "the late clicker's note")
    assert note.params["text"].startswith("This request is no longer pending")
    assert responders(runtime, thread.id) == []
