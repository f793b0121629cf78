"""What people see in Slack: replies in the thread, escaped and split, errors said plainly, rate limits
waited out, and threads a schedule started in a channel continuing in the Slack thread they open."""

from __future__ import annotations

import json

import pytest
from slack_sdk.errors import SlackApiError

from agent.events import AgentMessage, Failed, HumanRequest, Origin
from agent.thread import Status, Thread
from bot.runtime import Runtime
from channels.slack.blocks import MESSAGE_LIMIT
from channels.slack.inbound import route_key
from tests.answering import advance_and_answer
from tests.fake_slack import TEAM, FakeSlack, error, rate_limited
from tests.slack.signed import ALICE, CHANNEL, SignedSlack, deliver_all, mention, message


def started(slack: SignedSlack, runtime: Runtime) -> tuple[Thread, str]:
    """A thread started by a mention; returns it and the mention's ts (its Slack thread)."""
    start = mention("deploy the latest")
    slack.event(start)
    thread_id = runtime.thread_of(route_key(TEAM, CHANNEL, start["ts"]))
    assert thread_id is not None
    return runtime.load(thread_id), start["ts"]


def test_a_rate_limited_post_is_retried_after_retry_after(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, root = started(slack, runtime)
    fake_slack.script("chat.postMessage", rate_limited(retry_after=1))
    runtime.record(thread, AgentMessage(text="Looking at the tags now."))
    deliver_all(runtime)
    calls = fake_slack.calls_to("chat.postMessage")
    assert [call.status for call in calls] == [429, 200]
    assert [(p["text"], p["thread_ts"]) for p in fake_slack.posts()] == [("Looking at the tags now.", root)]


def test_a_slack_error_fails_the_delivery_so_it_is_retried(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, _ = started(slack, runtime)
    fake_slack.script("chat.postMessage", error("channel_not_found"))
    message_event = runtime.record(thread, AgentMessage(text="hello")).thread.events[-1]
    with pytest.raises(SlackApiError, match="channel_not_found"):
        runtime.deliver(thread.id, message_event.id)
    runtime.deliver(thread.id, message_event.id)
    assert [p["text"] for p in fake_slack.posts()] == ["hello"]


def test_agent_text_is_escaped_and_long_text_is_split(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, root = started(slack, runtime)
    long = "\n".join(f"line {n}: <!channel> & <@U0ALICE> <https://evil.example|click>" for n in range(120))
    runtime.record(thread, AgentMessage(text=long))
    deliver_all(runtime)
    parts = [p["text"] for p in fake_slack.posts()]
    assert len(parts) > 1 and all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert all(p["thread_ts"] == root for p in fake_slack.posts())
    joined = "\n".join(parts)
    assert "<" not in joined and ">" not in joined, "nothing the agent wrote can ping, mention or link"
    assert joined.count("&lt;!channel&gt; &amp; &lt;@U0ALICE&gt;") == 120


def test_failures_and_cancellations_are_told_plainly_and_the_working_reaction_comes_off(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, _ = started(slack, runtime)
    deliver_all(runtime)
    runtime.record(thread, Failed(reason="Redis went away three times"))
    deliver_all(runtime)
    assert fake_slack.posts()[-1]["text"] == ":warning: Sorry, I had to stop: Redis went away three times"
    methods = [c.method for c in fake_slack.calls if c.method.startswith("reactions")]
    assert methods == ["reactions.add", "reactions.remove"]

    other, _ = started(slack, runtime)
    runtime.cancel(other.id, ALICE, reason="wrong repo")
    deliver_all(runtime)
    assert fake_slack.posts()[-1]["text"] == f":no_entry_sign: Cancelled by <@{ALICE}>. wrong repo"


def test_pause_and_resume_are_told_in_the_slack_thread(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, root = started(slack, runtime)
    runtime.pause(thread.id, ALICE, reason="release freeze")
    runtime.resume(thread.id, ALICE)
    deliver_all(runtime)
    told = [(p["text"], p["thread_ts"]) for p in fake_slack.posts()][-2:]
    assert told == [
        (f":double_vertical_bar: Paused by <@{ALICE}>. release freeze", root),
        (f":arrow_forward: Resumed by <@{ALICE}>.", root),
    ]


def test_a_question_asks_for_a_reply_in_the_thread_and_shows_the_answer(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread, root = started(slack, runtime)
    escalation = HumanRequest(
        request_id="q1",
        kind="question",
        text="I hit 3 errors in a row. How should I proceed?",
        approvers=(ALICE,),
    )
    runtime.record(thread, escalation)
    deliver_all(runtime)
    question = fake_slack.posts()[-1]
    assert question["thread_ts"] == root
    assert "I hit 3 errors in a row" in question["text"]
    assert "Reply in this thread to answer" in json.dumps(question["blocks"])
    assert "actions" not in [block["type"] for block in question["blocks"]]

    slack.event(message("try v1.0.0 instead", user=ALICE, thread_ts=root))
    deliver_all(runtime)
    [update] = fake_slack.calls_to("chat.update")
    assert update.params["ts"] == question["ts"]
    assert (
        f"Answered by <@{ALICE}>" in update.params["text"] and "try v1.0.0 instead" in update.params["text"]
    )
    assert runtime.load(thread.id).status is Status.RUNNING


def test_a_thread_a_schedule_started_posts_at_the_top_and_continues_in_the_slack_thread_it_opens(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    origin = Origin(channel="slack", sender="schedule:nightly", address={"channel": "C0OPS"})
    thread_id = runtime.launch("deploy", "deploy the latest", origin=origin).thread.id
    deliver_all(runtime)
    assert not fake_slack.calls_to("reactions.add"), "no Slack message started this thread"
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.status is Status.AWAITING_HUMAN
    deliver_all(runtime)
    [request_post] = fake_slack.posts()
    assert request_post["channel"] == "C0OPS" and request_post.get("thread_ts") is None, "top level"
    assert runtime.thread_of(route_key(TEAM, "C0OPS", request_post["ts"])) == thread_id

    reply = message("go ahead", user=ALICE, thread_ts=request_post["ts"], channel="C0OPS")
    assert slack.event(reply).status_code == 200
    assert [e.type for e in runtime.load(thread_id).events][-1] == "trigger", "the reply joined the thread"
    slack.approve({**request_post, "thread_ts": None}, ALICE)
    advance_and_answer(runtime, thread_id)
    deliver_all(runtime)
    done = fake_slack.posts()[-1]
    assert done["text"].startswith("Done: deployed") and done["thread_ts"] == request_post["ts"]
    assert done["channel"] == "C0OPS"
