"""Requests nobody answers in time, by email: each reminder and escalation mails everyone
asked then a reply token of their own, answerable like the request itself (and tells the
others, without one); a time-out is told, and closes the request for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.thread import Status
from bot.runtime import Runtime
from bot.work.expiry import expire_due
from channels.email.addresses import split_tag
from channels.email.server import InboxServer
from tests.channel_helpers import run_deliveries
from tests.email_channel.conftest import ALICE, INBOX
from tests.email_channel.servers import Captured, Relay
from tests.email_channel.test_answers import refused, reply, request_mail, step

BOB = "bob@example.com"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """Requests wait ten minutes, are reminded once, then go to Bob."""
    return {
        **env,
        "OUTERLOOP_REQUEST_TTL": "600",
        "OUTERLOOP_REQUEST_REMINDERS": "1",
        "OUTERLOOP_ESCALATION_APPROVERS": BOB,
    }


def expire(runtime: Runtime, relay: Relay, thread_id: str, mails: int = 1) -> list[Captured]:
    """Let the pending request's deadline pass (the sweep is given the time) and return the
    ``mails`` mails that says so."""
    pending, sent = runtime.load(thread_id).pending, len(relay.mails)
    assert pending is not None and pending.expires_at is not None
    assert len(expire_due(runtime, pending.expires_at)) == 1
    run_deliveries(runtime)
    return relay.wait(sent + mails)[sent:]


def test_reminders_and_escalations_are_mailed_and_answerable(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, request = request_mail(runtime, inbox, relay)
    (reminder,) = expire(runtime, relay, thread_id)
    assert reminder.text().startswith("Reminder: this still waits for an answer.\n\nApprove deploy(")
    assert reminder.recipients == [ALICE] and split_tag(reminder.header("Reply-To"))[1] is not None
    assert reminder.header("Reply-To") != request.header("Reply-To"), "a new token for a new mail"
    assert reminder.header("In-Reply-To") == request.header("Message-ID")

    notice, escalation = expire(runtime, relay, thread_id, mails=2)
    for sent in (notice, escalation):
        assert sent.text().startswith(f"Nobody answered in time, so this now goes to {BOB}.")
    assert escalation.recipients == [BOB] and escalation.header("Cc") == ""
    assert split_tag(escalation.header("Reply-To"))[1] is not None
    assert f"it takes an answer only from {BOB}" in escalation.text()
    assert notice.recipients == [ALICE] and notice.header("Reply-To") == INBOX, "Alice is no longer asked"
    assert b"alice@example.com may not answer" in refused(inbox, reminder, "approve")
    assert b"not a reply address given to alice@example.com" in refused(inbox, escalation, "approve")

    reply(inbox, escalation, "approve", sender=BOB)
    step(runtime, thread_id)
    assert deploy_log.read_text() == "v1.1.0 staging\n"
    assert runtime.load(thread_id).status is Status.DONE


def test_a_time_out_is_mailed_and_later_answers_are_refused(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, _ = request_mail(runtime, inbox, relay)
    expire(runtime, relay, thread_id)
    _, escalation = expire(runtime, relay, thread_id, mails=2)
    (timed_out,) = expire(runtime, relay, thread_id)
    assert timed_out.text().startswith("Nobody answered in time, so the request is closed unanswered")
    assert timed_out.header("Reply-To") == INBOX, "nothing to answer any more: no token"
    assert b"the request was no longer waiting for an answer" in refused(
        inbox, escalation, "approve", sender=BOB
    )
    assert not deploy_log.exists()
