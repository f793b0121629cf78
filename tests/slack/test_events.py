"""Slack events over HTTP: verified, deduplicated, and turned into triggers on the right thread."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from agent.definition import UnknownAgent
from agent.events import HumanRequest, HumanResponse, Trigger
from agent.thread import Thread
from bot.doors.slack import SlackUnavailable
from bot.model import queue as model_queue
from bot.runtime import Runtime
from bot.settings import Settings
from bot.web.app import create_app
from channels.request_text import BLANK_REQUEST
from channels.slack.inbound import route_key
from tests.fake_slack import BOT_ID, BOT_USER, TEAM, FakeSlack, error
from tests.services import free_port, serve, wait_for
from tests.slack.signed import (
    ALICE,
    CHANNEL,
    MALLORY,
    SignedSlack,
    event_callback,
    mention,
    message,
    signed_headers,
)


def thread_of(runtime: Runtime, root_ts: str, channel: str = CHANNEL) -> Thread | None:
    thread_id = runtime.thread_of(route_key(TEAM, channel, root_ts))
    return runtime.load(thread_id) if thread_id else None


def triggers(thread: Thread) -> list[str]:
    return [event.text for event in thread.events if isinstance(event, Trigger)]


def test_a_mention_starts_a_thread_for_its_slack_thread(slack: SignedSlack, runtime: Runtime) -> None:
    event = mention("deploy the latest &amp; greatest")
    response = slack.event(event)
    assert response.status_code == 200
    thread = thread_of(runtime, event["ts"])
    assert thread is not None and thread.agent == "deploy"
    [trigger] = [e for e in thread.events if isinstance(e, Trigger)]
    assert trigger.text == "deploy the latest & greatest", "the mention is stripped and the text unescaped"
    assert trigger.origin.channel == "slack" and trigger.origin.sender == ALICE
    assert trigger.origin.address == {
        "team": TEAM,
        "channel": CHANNEL,
        "thread_ts": event["ts"],
        "ts": event["ts"],
    }
    # The request only asked: the thread waits for a caller to call the model
    assert [e.type for e in thread.events] == ["trigger", "model_requested"]
    assert model_queue.is_waiting(runtime.connection, thread.id)


FORGERIES: dict[str, Callable[[str], dict[str, str]]] = {
    "signature of another body": lambda body: signed_headers(body + " "),
    "wrong secret": lambda body: signed_headers(body, secret="not-the-signing-secret"),
    "stale timestamp": lambda body: signed_headers(body, timestamp=int(time.time()) - 10 * 60),
    "unsigned": lambda body: {},
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_and_stale_requests_are_refused_with_401(
    slack: SignedSlack, runtime: Runtime, forge: Callable[[str], dict[str, str]]
) -> None:
    event = mention("deploy")
    body = json.dumps(event_callback(event))
    assert slack.post(body, "application/json", forge(body)).status_code == 401
    assert thread_of(runtime, event["ts"]) is None
    form = "payload=%7B%22type%22%3A%22block_actions%22%7D"
    assert slack.post(form, "application/x-www-form-urlencoded", forge(form)).status_code == 401


def test_a_retried_event_and_the_message_twin_of_a_mention_have_one_effect(
    slack: SignedSlack, runtime: Runtime
) -> None:
    event = mention("deploy the latest")
    assert slack.event(event, event_id="Ev1").status_code == 200
    assert slack.event(event, event_id="Ev1", retry=1).status_code == 200
    assert slack.event(event, event_id="Ev1", retry=2).status_code == 200
    # Slack also sends the same message as a `message` event, with an event id of its own.
    twin = {**event, "type": "message", "channel_type": "channel"}
    assert slack.event(twin, event_id="Ev2").status_code == 200
    thread = thread_of(runtime, event["ts"])
    assert thread is not None and triggers(thread) == ["deploy the latest"]
    assert [e.type for e in thread.events] == ["trigger", "model_requested"]
    assert model_queue.waiting(runtime.connection) == 1


def test_replies_in_our_slack_thread_continue_it_and_other_chatter_is_ignored(
    slack: SignedSlack, runtime: Runtime
) -> None:
    start = mention("deploy the latest")
    slack.event(start)
    assert slack.event(message("to staging please", user=MALLORY, thread_ts=start["ts"])).status_code == 200
    chatter = message("lunch anyone?")
    other_thread = message("unrelated reply", thread_ts=chatter["ts"])
    assert slack.event(chatter).status_code == 200
    assert slack.event(other_thread).status_code == 200
    thread = thread_of(runtime, start["ts"])
    assert thread is not None and triggers(thread) == ["deploy the latest", "to staging please"]
    assert thread_of(runtime, chatter["ts"]) is None
    assert len(runtime.store.ids()) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"bot_id": BOT_ID, "user": BOT_USER},
        {"user": BOT_USER},
        {"bot_id": "B0OTHER", "subtype": "bot_message"},
        {"bot_id": "B0OTHER", "user": "U0OTHERBOT"},
        {"subtype": "message_changed"},
        {"subtype": "channel_join"},
    ],
    ids=["own post", "own user", "bot message", "other bot's user", "edit", "join"],
)
def test_the_bots_own_messages_other_bots_and_non_messages_are_ignored(
    slack: SignedSlack, runtime: Runtime, extra: dict[str, str]
) -> None:
    start = mention("deploy the latest")
    slack.event(start)
    reply = message("ignore me", thread_ts=start["ts"], **extra)
    assert slack.event(reply).status_code == 200
    thread = thread_of(runtime, start["ts"])
    assert thread is not None and triggers(thread) == ["deploy the latest"]


def test_a_direct_message_starts_a_thread_without_a_mention(slack: SignedSlack, runtime: Runtime) -> None:
    dm = message("what can you deploy?", channel="D0ALICE", channel_type="im")
    assert slack.event(dm).status_code == 200
    thread = thread_of(runtime, dm["ts"], channel="D0ALICE")
    assert thread is not None and triggers(thread) == ["what can you deploy?"]


def test_a_reply_to_a_pending_question_answers_it_if_the_replier_may(
    slack: SignedSlack, runtime: Runtime
) -> None:
    start = mention("deploy the latest")
    slack.event(start)
    thread = thread_of(runtime, start["ts"])
    assert thread is not None
    question = HumanRequest(request_id="q1", kind="question", text="Which environment?", approvers=(ALICE,))
    runtime.store.append(thread, question)
    slack.event(message("production, obviously", user=MALLORY, thread_ts=start["ts"]))
    slack.event(message("staging", user=ALICE, thread_ts=start["ts"]))
    thread = runtime.load(thread.id)
    [answer] = [e for e in thread.events if isinstance(e, HumanResponse)]
    assert (answer.responder, answer.answer) == (ALICE, "staging")
    assert triggers(thread) == ["deploy the latest", "production, obviously"], (
        "a stranger's reply is a message"
    )
    assert thread.pending is None


def test_an_event_that_cannot_be_stored_is_not_acknowledged(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    """Slack delivers again what we answer 503 to: nothing is acknowledged before it is stored."""
    settings.redis_url = f"redis://127.0.0.1:{free_port()}/0"
    with serve(create_app(Runtime.from_settings(settings))) as url, httpx.Client(base_url=url) as http:
        response = SignedSlack(http).event(mention("deploy the latest"))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_slack_url_verification_is_answered(slack: SignedSlack) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    response = slack.post(body, "application/json")
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}


def test_a_bad_bot_token_or_unknown_slack_agent_stops_the_web_app_at_start(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    fake_slack.script("auth.test", error("invalid_auth"))
    with pytest.raises(SlackUnavailable, match=r"Slack did not accept SLACK_BOT_TOKEN .*invalid_auth"):
        create_app(Runtime.from_settings(settings))
    settings.slack_agent = "nope"
    with pytest.raises(UnknownAgent, match="no agent named 'nope'"):
        create_app(Runtime.from_settings(settings))


def test_a_blank_mention_starts_nothing_and_the_writer_is_told_why(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    event = mention("   ")
    assert slack.event(event).status_code == 200
    assert thread_of(runtime, event["ts"]) is None
    [note] = wait_for(
        lambda: [c.params for c in fake_slack.calls_to("chat.postEphemeral") if c.params["user"] == ALICE],
        "the note to the writer",
    )
    assert note["text"] == BLANK_REQUEST and note["thread_ts"] == event["ts"]
