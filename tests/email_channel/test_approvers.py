"""Only the approver answers by mail: each person asked gets a reply token bound to their own
address, a requester who is not an approver gets a notice without one, and an answer counts
only when the token's address, ``From:`` and the envelope sender agree (issue 10, item 1)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.events import HumanResponse
from agent.thread import Status
from bot.doors.smtp import inbox_config
from bot.runtime import Runtime
from channels.email.addresses import REDACTED, redacted, split_tag
from channels.email.inbound import Inbox
from channels.email.server import InboxServer, ListenConfig
from tests.email_channel.conftest import ALICE, INBOX
from tests.email_channel.servers import Captured, Relay, certificate, mail, send
from tests.email_channel.test_answers import step
from tests.services import free_port

BOB = "bob@example.com"
CAROL = "carol@example.com"
"""The requester: allowed to mail the inbox, not an approver."""


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OUTERLOOP_APPROVERS": f"{ALICE},{BOB}"}


def carols_request(runtime: Runtime, inbox: InboxServer, relay: Relay) -> tuple[str, dict[str, Captured]]:
    """Carol mails a deploy request in; the mails sent for its approval, by recipient."""
    send(inbox.config.port, mail("deploy the latest tag please", sender=CAROL), CAROL, [INBOX])
    (thread_id,) = runtime.store.ids()
    step(runtime, thread_id)
    sent = relay.wait(3)
    return thread_id, {sent_mail.recipients[0]: sent_mail for sent_mail in sent}


def answer(
    port: int,
    request: Captured,
    text: str,
    *,
    author: str,
    envelope: str | None = None,
    to: str | None = None,
) -> None:
    """Reply to ``request`` with ``From: author`` from the mailbox ``envelope`` (default: the author's)."""
    sender = envelope or author
    send(port, mail(text, sender=author, replying_to=request), sender, [to or request.header("Reply-To")])


def refused(port: int, request: Captured, text: str, **options: str) -> str:
    with pytest.raises(smtplib.SMTPDataError) as refusal:
        answer(port, request, text, **options)
    assert refusal.value.smtp_code == 550
    return refusal.value.smtp_error.decode()


def still_pending(runtime: Runtime, thread_id: str, deploy_log: Path) -> None:
    thread = runtime.load(thread_id)
    assert thread.status is Status.AWAITING_HUMAN and thread.pending is not None
    assert not [e for e in thread.events if isinstance(e, HumanResponse)]
    assert not deploy_log.exists()


def test_each_approver_gets_a_token_of_their_own_and_the_requester_a_notice_without_one(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    _, mails = carols_request(runtime, inbox, relay)
    assert sorted(mails) == [ALICE, BOB, CAROL]
    notice = mails[CAROL]
    assert notice.header("Reply-To") == INBOX, "no token: a reply to the notice answers nothing"
    assert redacted(notice.message.as_string()) == notice.message.as_string(), "no plus-address at all"
    assert f"This waits for an answer from {ALICE}, {BOB}" in notice.text()
    assert "a reply to it does not answer the request" in notice.text()
    tokens = set()
    for approver in (ALICE, BOB):
        asked = mails[approver]
        assert asked.recipients == [approver] and asked.header("To") == approver
        assert asked.header("Cc") == ""
        assert f"it takes an answer only from {approver}" in asked.text()
        tokens.add(split_tag(asked.header("Reply-To"))[1])
    assert None not in tokens and len(tokens) == 2
    assert len({m.header("Message-ID") for m in mails.values()}) == 3


def test_a_requester_cannot_approve_their_own_request_by_mail(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    """The attack of issue 10: the requester sends ``From: boss`` from their own mailbox."""
    thread_id, mails = carols_request(runtime, inbox, relay)
    port, alices = inbox.config.port, mails[ALICE]
    # With Alice's reply address (forwarded to Carol, say), From: Alice, envelope Carol.
    assert "5.7.1 the envelope sender <carol@example.com> is not the From: address" in refused(
        port, alices, "approve", author=ALICE, envelope=CAROL
    )
    # ... or honestly as herself.
    assert "not a reply address given to carol@example.com" in refused(port, alices, "approve", author=CAROL)
    # Her own notice carries no token: a forged "approve" to it is just a message in the thread.
    answer(port, mails[CAROL], "approve", author=ALICE, envelope=CAROL)
    step(runtime, thread_id)
    still_pending(runtime, thread_id, deploy_log)


def test_an_approver_answers_with_their_own_token_from_their_own_mailbox(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, mails = carols_request(runtime, inbox, relay)
    answer(inbox.config.port, mails[BOB], "approve", author="Bob@Example.com", envelope="BOB@example.COM")
    step(runtime, thread_id)
    assert deploy_log.read_text() == "v1.1.0 staging\n"
    response = next(e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse))
    assert (response.responder, response.approved) == (BOB, True)


def test_an_approvers_token_does_not_work_for_another_approver(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, mails = carols_request(runtime, inbox, relay)
    assert "5.7.1 the address is not a reply address given to bob@example.com" in refused(
        inbox.config.port, mails[ALICE], "approve", author=BOB
    )
    still_pending(runtime, thread_id, deploy_log)


def test_an_answer_whose_envelope_differs_from_its_from_is_refused(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, mails = carols_request(runtime, inbox, relay)
    assert "is not the From: address <alice@example.com>: answer from your own mailbox" in refused(
        inbox.config.port, mails[ALICE], "approve", author=ALICE, envelope=BOB
    )
    still_pending(runtime, thread_id, deploy_log)


def test_an_inbox_that_requires_auth_takes_answers_only_from_authenticated_sessions(
    runtime: Runtime, inbox: InboxServer, relay: Relay, tmp_path: Path, deploy_log: Path
) -> None:
    thread_id, mails = carols_request(runtime, inbox, relay)
    answering = mail("approve", sender=ALICE, replying_to=mails[ALICE])
    token_address = mails[ALICE].header("Reply-To")
    requiring = replace(inbox_config(runtime.settings), require_auth=True)
    # A server in front that lets an unauthenticated session through is not trusted for answers.
    open_door = InboxServer(Inbox(runtime, requiring), ListenConfig(port=free_port()))
    cert, key = certificate(tmp_path)
    listen = ListenConfig(port=free_port(), tls_cert=cert, tls_key=key, username="relay", password="s3cret")
    guarded = InboxServer(Inbox(runtime, requiring), listen)
    open_door.start()
    guarded.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as refusal:
            send(open_door.config.port, answering, ALICE, [token_address])
        assert refusal.value.smtp_code == 550
        assert b"5.7.1 answers are taken only from a session that authenticated" in refusal.value.smtp_error
        with smtplib.SMTP("127.0.0.1", listen.port) as client:
            client.starttls(context=_trusting(cert))
            client.ehlo()
            assert client.mail(ALICE)[0] == 530, "no AUTH, no mail"
        still_pending(runtime, thread_id, deploy_log)
        with smtplib.SMTP("127.0.0.1", listen.port) as client:
            client.starttls(context=_trusting(cert))
            client.login("relay", "s3cret")
            client.send_message(answering, from_addr=ALICE, to_addrs=[token_address])
    finally:
        guarded.stop()
        open_door.stop()
    step(runtime, thread_id)
    assert deploy_log.read_text() == "v1.1.0 staging\n"


def test_reply_tokens_never_reach_the_logs(
    runtime: Runtime, inbox: InboxServer, relay: Relay, caplog: pytest.LogCaptureFixture, deploy_log: Path
) -> None:
    caplog.set_level(logging.DEBUG)  # aiosmtpd logs every command line at INFO and DEBUG
    with capture_logs() as events:
        thread_id, mails = carols_request(runtime, inbox, relay)
        port, alices = inbox.config.port, mails[ALICE]
        refused(port, alices, "approve", author=BOB)
        refused(port, alices, "approve", author=ALICE, envelope=BOB)
        refused(port, alices, "sounds good", author=ALICE)
        answer(port, alices, "approve", author=ALICE)
        step(runtime, thread_id)
    assert deploy_log.read_text() == "v1.1.0 staging\n"
    tokens = [split_tag(mails[a].header("Reply-To"))[1] or "" for a in (ALICE, BOB)]
    logged = [str(event) for event in events] + [record.getMessage() for record in caplog.records]
    assert any(event["event"] == "smtp.refused" for event in events)
    assert any(REDACTED in line for line in logged), "the inbox's command lines were logged, blanked"
    assert all(token and token not in line for token in tokens for line in logged)


def _trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))
