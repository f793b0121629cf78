"""Approve and Reject from Slack: who may click, what a click records, and what Slack shows after."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agent.approvals import call_digest
from agent.events import HumanResponse
from agent.thread import Status, Thread
from bot.runtime import Runtime
from channels.slack.blocks import REASON_VIEW
from tests.answering import advance_and_answer
from tests.fake_slack import FakeSlack
from tests.services import wait_for
from tests.slack.signed import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    MALLORY,
    OPS,
    SignedSlack,
    button_value,
    deliver_all,
    mention,
    reason_submitted,
)


def run(runtime: Runtime, thread_id: str) -> Thread:
    """What a worker does: advance the thread, then deliver what people should see."""
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None
    deliver_all(runtime)
    return thread


def awaiting_approval(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack, requester: str = CAROL
) -> tuple[str, dict[str, Any]]:
    """``requester`` mentions the bot, which runs the thread up to its approval message; returns
    the thread id and post."""
    start = mention("deploy the latest", user=requester)
    assert slack.event(start).status_code == 200
    thread_id = runtime.thread_of(f"slack:T0TEAM:{CHANNEL}:{start['ts']}")
    assert thread_id is not None
    deliver_all(runtime)  # the trigger's delivery: a worker shows "working" before the model answers
    thread = run(runtime, thread_id)
    assert thread.status is Status.AWAITING_HUMAN
    [post] = [p for p in fake_slack.posts() if p.get("blocks")]
    assert post["thread_ts"] == start["ts"] and post["channel"] == CHANNEL
    return thread_id, post


def responses(runtime: Runtime, thread_id: str) -> list[HumanResponse]:
    return [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]


def ephemeral_texts(fake_slack: FakeSlack, user: str) -> list[str]:
    return [c.params["text"] for c in fake_slack.calls_to("chat.postEphemeral") if c.params["user"] == user]


def test_mention_to_approval_buttons_to_approve_to_deploy_to_reply_in_the_thread(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack, deploy_log: Path
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    start_ts = post["thread_ts"]
    text = json.dumps(post["blocks"])
    assert "Approval needed" in text and "`deploy`" in text and "v1.1.0" in text and "staging" in text
    assert f"<@{ALICE}>" in text and f"<!subteam^{OPS}>" in text, "the message says who may answer"
    pending = runtime.load(thread_id).pending
    assert pending is not None
    assert pending.call is not None
    assert json.loads(button_value(post)) == {
        "thread": thread_id,
        "request": pending.request_id,
        "digest": call_digest(pending.call),
    }, "the buttons name the request and bind the arguments shown"
    reactions = [
        (c.method, c.params["timestamp"]) for c in fake_slack.calls if c.method.startswith("reactions")
    ]
    assert reactions == [("reactions.add", start_ts), ("reactions.remove", start_ts)], "working, then waiting"
    assert not deploy_log.exists()

    assert slack.approve(post, ALICE).status_code == 200
    assert responses(runtime, thread_id)[0].approved is True
    thread = run(runtime, thread_id)

    assert thread.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.1.0", "staging"]
    [update] = fake_slack.calls_to("chat.update")
    assert update.params["ts"] == post["ts"] and update.params["channel"] == CHANNEL
    assert f"Approved by <@{ALICE}>" in json.dumps(update.params["blocks"])
    assert "actions" not in [block["type"] for block in update.params["blocks"]], "the buttons are gone"
    reply = fake_slack.posts()[-1]
    assert reply["thread_ts"] == start_ts and reply["text"].startswith("Done: deployed v1.1.0 to staging.")


def test_a_member_of_an_approving_user_group_may_approve(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    assert slack.approve(post, BOB).status_code == 200
    [response] = responses(runtime, thread_id)
    assert (response.responder, response.via, response.approved) == (BOB, OPS, True)
    assert [c.params["usergroup"] for c in fake_slack.calls_to("usergroups.users.list")] == [OPS]


def test_a_click_from_someone_not_allowed_is_refused_and_changes_nothing(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    before = runtime.load(thread_id)
    assert slack.approve(post, MALLORY).status_code == 200
    assert slack.reject(post, MALLORY).status_code == 200
    wait_for(lambda: len(ephemeral_texts(fake_slack, MALLORY)) == 2 or None, "both refusals")
    for refusal in fake_slack.calls_to("chat.postEphemeral"):
        assert refusal.params["text"] == (
            f"Sorry, only <@{ALICE}>, <!subteam^{OPS}> may answer this request. Nothing was changed."
        )
        assert refusal.params["channel"] == CHANNEL and refusal.params["thread_ts"] == post["thread_ts"]
    assert runtime.load(thread_id) == before, "no event was added"
    assert not fake_slack.calls_to("views.open") and not fake_slack.calls_to("chat.update")


def test_a_second_click_records_nothing_and_says_who_answered(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    assert slack.approve(post, ALICE).status_code == 200
    assert slack.approve(post, BOB).status_code == 200
    assert slack.reject(post, ALICE).status_code == 200
    assert [r.responder for r in responses(runtime, thread_id)] == [ALICE]
    [note] = wait_for(lambda: ephemeral_texts(fake_slack, BOB), "the note to the second clicker")
    assert note == f"This request was already answered by <@{ALICE}>."
    wait_for(lambda: ephemeral_texts(fake_slack, ALICE), "the note to the first clicker clicking again")
    assert not fake_slack.calls_to("views.open")


def test_simultaneous_clicks_record_one_response(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda user: slack.approve(post, user).status_code, [ALICE, BOB] * 3))
    assert statuses == [200] * 6
    assert len(responses(runtime, thread_id)) == 1
    wait_for(
        lambda: len(fake_slack.calls_to("chat.postEphemeral")) == 5 or None, "five 'already answered' notes"
    )


def test_reject_asks_for_a_reason_in_a_modal_and_records_it(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack, deploy_log: Path
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    assert slack.reject(post, ALICE).status_code == 200
    assert responses(runtime, thread_id) == [], "a Reject click alone decides nothing"
    [opened] = wait_for(lambda: fake_slack.calls_to("views.open"), "the reason modal")
    view = opened.params["view"]
    assert view["callback_id"] == REASON_VIEW and opened.params["trigger_id"].endswith(".trigger")

    submitted = slack.interact(
        reason_submitted(view["private_metadata"], "change freeze until Monday", ALICE)
    )
    assert submitted.status_code == 200 and submitted.content in (b"", b"{}")
    [response] = responses(runtime, thread_id)
    assert (response.approved, response.comment) == (False, "change freeze until Monday")
    thread = run(runtime, thread_id)
    assert thread.status is Status.DONE and not deploy_log.exists()
    [update] = fake_slack.calls_to("chat.update")
    assert f"Rejected by <@{ALICE}>" in json.dumps(update.params["blocks"])
    assert fake_slack.posts()[-1]["text"] == "Not deploying: change freeze until Monday"


@pytest.mark.parametrize("second", [ALICE, MALLORY])
def test_a_reason_submitted_after_the_request_was_settled_is_shown_as_an_error_in_the_modal(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack, second: str
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    slack.reject(post, BOB)
    [opened] = wait_for(lambda: fake_slack.calls_to("views.open"), "the reason modal")
    if second == ALICE:
        slack.approve(post, ALICE)
    submitted = slack.interact(reason_submitted(opened.params["view"]["private_metadata"], "no", second))
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["response_action"] == "errors"
    expected = f"already answered by <@{ALICE}>" if second == ALICE else "Sorry, only"
    assert expected in body["errors"]["reason"]
    assert [r.responder for r in responses(runtime, thread_id)] == ([ALICE] if second == ALICE else [])
