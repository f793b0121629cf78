"""Edit, two-person and standing approvals from Slack: signed clicks and modal submissions to the
real web app, the approvals they record, and what Slack shows after."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rq import Queue

from agent.approvals import call_digest
from agent.events import HumanResponse
from agent.thread import Status
from agent.tools import Policy
from bot.delivery import outbox
from bot.runtime import Runtime
from channels.slack.editor import EDIT_VIEW, SCOPE
from tests.fake_slack import FakeSlack
from tests.services import wait_for
from tests.slack.signed import ALICE, BOB, CAROL, CHANNEL, SignedSlack, deliver_all, edit_submitted, message
from tests.slack.test_approvals import awaiting_approval, ephemeral_texts, responses, run


def with_deploy_policy(runtime: Runtime, **policy: Any) -> None:
    """Slack's agent becomes a copy of the deploy agent whose ``deploy`` tool has ``policy``
    (request this fixture before ``slack``: the web app reads which agent when it is made)."""
    deploy = runtime.agents.get("deploy")
    tools = tuple(
        replace(tool, policy=Policy(needs_approval=True, **policy)) if tool.name == "deploy" else tool
        for tool in deploy.tools
    )
    runtime.agents.register(replace(deploy, name="deploy_strict", tools=tools))
    runtime.settings.slack_agent = "deploy_strict"


@pytest.fixture
def two_person(runtime: Runtime) -> Runtime:
    with_deploy_policy(runtime, min_approvals=2)
    return runtime


@pytest.fixture
def standing(runtime: Runtime) -> Runtime:
    with_deploy_policy(runtime, standing=True)
    return runtime


def opened_view(fake_slack: FakeSlack) -> dict[str, Any]:
    [opened] = wait_for(lambda: fake_slack.calls_to("views.open"), "the edit modal")
    view: dict[str, Any] = opened.params["view"]
    return view


def test_edit_opens_the_tools_form_prefilled_and_approves_with_the_edited_arguments(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack, deploy_log: Path
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    assert slack.edit(post, ALICE).status_code == 200
    assert responses(runtime, thread_id) == [], "an Edit click alone decides nothing"
    view = opened_view(fake_slack)
    inputs = {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}
    assert view["callback_id"] == EDIT_VIEW and set(inputs) == {"arg:tag", "arg:environment"}
    assert inputs["arg:tag"]["initial_value"] == "v1.1.0"
    environment = inputs["arg:environment"]
    assert [o["value"] for o in environment["options"]] == ['"staging"', '"production"']
    assert environment["initial_option"]["value"] == '"staging"'
    assert SCOPE not in inputs, "the deploy tool's policy allows no standing approvals"

    changed = edit_submitted(view, BOB, **{"arg:tag": "v1.0.0", "arg:environment": '"production"'})
    submitted = slack.interact(changed)
    assert submitted.status_code == 200 and submitted.content in (b"", b"{}")
    [response] = responses(runtime, thread_id)
    assert (response.responder, response.channel) == (BOB, "slack")
    assert response.arguments == {"tag": "v1.0.0", "environment": "production"}
    thread = run(runtime, thread_id)
    assert thread.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.0.0", "production"], "the edited call ran"
    request = thread.request(response.request_id)
    assert request is not None and request.call is not None
    assert request.call.arguments == {"tag": "v1.1.0", "environment": "staging"}, "the log keeps the original"
    [update] = fake_slack.calls_to("chat.update")
    shown = json.dumps(update.params["blocks"])
    assert f"Approved with changed arguments by <@{BOB}>" in shown and "production" in shown


def test_edited_arguments_the_tool_refuses_are_shown_in_the_modal_and_record_nothing(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    slack.edit(post, ALICE)
    view = opened_view(fake_slack)
    submitted = slack.interact(edit_submitted(view, ALICE, **{"arg:tag": "no such tag; rm -rf"}))
    assert submitted.status_code == 200
    body = submitted.json()
    assert body["response_action"] == "errors" and list(body["errors"]) == ["arg:tag"]
    assert "pattern" in body["errors"]["arg:tag"]
    assert responses(runtime, thread_id) == []
    assert runtime.load(thread_id).status is Status.AWAITING_HUMAN


def test_whoever_asked_for_the_call_may_not_approve_it_and_is_told_why(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack, requester=ALICE)
    assert slack.approve(post, ALICE).status_code == 200
    assert slack.edit(post, ALICE).status_code == 200
    notes = wait_for(
        lambda: ephemeral_texts(fake_slack, ALICE)[1:] and ephemeral_texts(fake_slack, ALICE), "notes"
    )
    assert all("separation of duties" in note for note in notes)
    assert responses(runtime, thread_id) == [] and not fake_slack.calls_to("views.open")
    assert slack.approve(post, BOB).status_code == 200
    assert [(r.responder, r.approved) for r in responses(runtime, thread_id)] == [(BOB, True)]


def test_a_two_person_call_shows_who_approved_and_refuses_a_click_on_arguments_since_changed(
    two_person: Runtime, slack: SignedSlack, fake_slack: FakeSlack, deploy_log: Path
) -> None:
    runtime = two_person
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    assert "Needs 2 approvers." in json.dumps(post["blocks"])
    slack.edit(post, ALICE)
    view = opened_view(fake_slack)
    assert slack.interact(edit_submitted(view, ALICE, **{"arg:tag": "v1.0.0"})).status_code == 200
    assert runtime.load(thread_id).approvals == (ALICE,)
    deliver_all(runtime)
    [update] = fake_slack.calls_to("chat.update")
    shown = json.dumps(update.params["blocks"])
    assert f"1 of 2 approved by <@{ALICE}>" in shown and "v1.0.0" in shown
    [actions] = [b for b in update.params["blocks"] if b["type"] == "actions"]
    pending = runtime.load(thread_id).pending
    assert pending is not None and pending.call is not None
    assert json.loads(actions["elements"][0]["value"])["digest"] == call_digest(pending.call)

    assert slack.approve(post, BOB).status_code == 200, "BOB clicks the message as first shown"
    [note] = wait_for(lambda: ephemeral_texts(fake_slack, BOB), "the note to BOB")
    assert "changed since this message showed them" in note
    assert runtime.load(thread_id).pending is not None, "nothing was approved"
    assert not deploy_log.exists()

    assert slack.approve({**post, "blocks": update.params["blocks"]}, BOB).status_code == 200
    thread = run(runtime, thread_id)
    assert thread.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.0.0", "staging"]
    assert [r.responder for r in responses(runtime, thread_id)] == [ALICE, BOB]


def test_a_standing_approval_given_in_slack_approves_the_next_call_without_asking(
    standing: Runtime, slack: SignedSlack, fake_slack: FakeSlack, deploy_log: Path
) -> None:
    runtime = standing
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    slack.edit(post, ALICE)
    view = opened_view(fake_slack)
    assert SCOPE in [block.get("block_id") for block in view["blocks"]]
    refused = slack.interact(edit_submitted(view, ALICE, scope="tool")).json()
    assert refused["response_action"] == "errors" and "hours" in refused["errors"]["hours"]
    assert slack.interact(edit_submitted(view, ALICE, scope="thread")).status_code == 200
    [given] = responses(runtime, thread_id)
    assert given.gives is not None and given.gives.scope == "thread" and given.gives.by == ALICE
    assert run(runtime, thread_id).status is Status.DONE

    again = message("and once more", user=CAROL, thread_ts=post["thread_ts"])
    assert slack.event(again).status_code == 200
    deliver_all(runtime)
    thread = run(runtime, thread_id)
    thread = run(runtime, thread_id) if thread.status is not Status.DONE else thread
    assert thread.status is Status.DONE
    assert deploy_log.read_text().split() == ["v1.1.0", "staging", "v1.1.0", "staging"]
    under = [r for r in responses(runtime, thread_id) if r.under is not None]
    assert [(r.channel, r.responder, r.under.grant_id if r.under else None) for r in under] == [
        ("grant", ALICE, given.gives.grant_id)
    ]
    [shown] = [p for p in fake_slack.posts() if "standing approval" in json.dumps(p.get("blocks"))]
    assert given.gives.grant_id in json.dumps(shown["blocks"]) and "nobody was asked" in shown["text"]
    assert "actions" not in [block["type"] for block in shown["blocks"]], "nobody is asked to click"
    assert shown["channel"] == CHANNEL


def test_a_call_a_grant_covers_is_never_posted_with_buttons_even_when_delivered_at_once(
    standing: Runtime, slack: SignedSlack, fake_slack: FakeSlack
) -> None:
    """Each delivery runs the moment it is queued (RQ's synchronous queue), the tightest race a
    delivery can run against the stand-in approval: the request must still not ask anyone."""
    runtime = standing
    runtime.outbound_queue = Queue(outbox.QUEUE, connection=runtime.connection, is_async=False)
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    slack.edit(post, ALICE)
    assert slack.interact(edit_submitted(opened_view(fake_slack), ALICE, scope="thread")).status_code == 200
    assert run(runtime, thread_id).status is Status.DONE
    assert slack.event(message("and once more", user=CAROL, thread_ts=post["thread_ts"])).status_code == 200
    thread = run(runtime, thread_id)
    thread = run(runtime, thread_id) if thread.status is not Status.DONE else thread
    assert thread.status is Status.DONE
    assert [r.channel for r in responses(runtime, thread_id)] == ["slack", "grant"]
    with_buttons = [p for p in fake_slack.posts() if "actions" in [b["type"] for b in p.get("blocks") or []]]
    assert [p["ts"] for p in with_buttons] == [post["ts"]], "a call the grant covered was shown with buttons"


def test_a_click_is_bound_to_the_request_and_arguments_it_showed(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id, post = awaiting_approval(slack, runtime, fake_slack)
    [actions] = [b for b in post["blocks"] if b["type"] == "actions"]
    forged = {**json.loads(actions["elements"][0]["value"]), "digest": "0" * 16}
    for element in actions["elements"]:
        element["value"] = json.dumps(forged)
    assert slack.approve(post, ALICE).status_code == 200
    [note] = wait_for(lambda: ephemeral_texts(fake_slack, ALICE), "the note")
    assert "changed since this message showed them" in note
    assert responses(runtime, thread_id) == []
    assert [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)] == []
