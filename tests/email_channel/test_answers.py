"""Answering a request by email: only a reply to the request's own token address, from an
allowed approver, saying approve / reject / the answer, changes anything. (Whose token it
is, and which mailbox sends it, is tested in ``test_approvers``.)"""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from agent.events import HumanRequest, HumanResponse, new_id
from agent.model import ModelCall
from agent.scripted_model import SequenceModel
from agent.thread import Status
from bot.runtime import Runtime
from channels.email.addresses import split_tag, tagged
from channels.email.server import InboxServer
from tests.answering import advance_and_answer
from tests.channel_helpers import run_deliveries
from tests.email_channel.conftest import ALICE, INBOX
from tests.email_channel.servers import Captured, Relay, mail, send


def step(runtime: Runtime, thread_id: str) -> None:
    """What a worker does: advance the thread, then deliver what it has to show."""
    advance_and_answer(runtime, thread_id)
    run_deliveries(runtime)


def request_mail(runtime: Runtime, inbox: InboxServer, relay: Relay) -> tuple[str, Captured]:
    """Mail a deploy request in and return its thread and the approval mail sent out."""
    first = mail("deploy the latest tag please")
    send(inbox.config.port, first, ALICE, [INBOX])
    (thread_id,) = runtime.store.ids()
    step(runtime, thread_id)
    (request,) = relay.wait(1)
    return thread_id, request


def reply(
    inbox: InboxServer, request: Captured, text: str, sender: str = ALICE, to: str | None = None
) -> None:
    send(
        inbox.config.port,
        mail(text, sender=sender, replying_to=request),
        sender,
        [to or request.header("Reply-To")],
    )


def refused(inbox: InboxServer, request: Captured, text: str, **options: str) -> bytes:
    with pytest.raises(smtplib.SMTPResponseException) as refusal:
        reply(inbox, request, text, **options)
    assert refusal.value.smtp_code == 550
    return refusal.value.smtp_error


def test_the_request_mail_says_how_to_answer_and_where(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    _, request = request_mail(runtime, inbox, relay)
    assert 'Approve deploy(tag="v1.1.0", environment="staging")?' in request.text()
    assert "    approve\n    reject: <your reason>" in request.text()
    assert "Asked: alice@example.com." in request.text()
    assert "it takes an answer only from alice@example.com, sent from that mailbox" in request.text()
    assert request.recipients == [ALICE] and request.header("To") == ALICE
    inbox_address, token = split_tag(request.header("Reply-To"))
    assert inbox_address == INBOX and token is not None and len(token) >= 32


def test_a_rejection_by_email_ends_the_thread_without_the_tool(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    thread_id, request = request_mail(runtime, inbox, relay)
    reply(inbox, request, "reject: not during the freeze")
    step(runtime, thread_id)
    thread = runtime.load(thread_id)
    assert thread.status is Status.DONE and not deploy_log.exists()
    response = next(e for e in thread.events if isinstance(e, HumanResponse))
    assert (response.responder, response.approved, response.comment) == (
        ALICE,
        False,
        "not during the freeze",
    )
    assert "Not deploying: not during the freeze" in relay.wait(2)[1].text()


def test_wrong_tokens_unlisted_senders_and_non_approvers_change_nothing(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    thread_id, request = request_mail(runtime, inbox, relay)
    before, queued = runtime.load(thread_id), runtime.queue.count
    _, token = split_tag(request.header("Reply-To"))
    assert token is not None
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert b"5.7.1 the address is not a reply address given to alice@example.com" in refused(
        inbox, request, "approve", to=tagged(INBOX, forged)
    )
    assert b"5.1.1 the address is not the reply address of any request" in refused(
        inbox, request, "approve", to=tagged(INBOX, "guess")
    )
    assert b"not a reply address given to carol@example.com" in refused(
        inbox, request, "approve", sender="carol@example.com"
    )
    with pytest.raises(smtplib.SMTPSenderRefused):
        reply(inbox, request, "approve", sender="mallory@evil.example")
    assert b'start the reply with "approve"' in refused(inbox, request, "sounds good to me")
    assert runtime.load(thread_id) == before
    assert runtime.queue.count == queued, "nothing was woken"


def test_a_request_answered_elsewhere_refuses_a_later_email_answer(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    thread_id, request = request_mail(runtime, inbox, relay)
    pending = runtime.load(thread_id).pending
    assert pending is not None
    runtime.respond(thread_id, pending.request_id, ALICE, approved=False, comment="via the CLI")
    assert b"already answered by alice@example.com" in refused(inbox, request, "approve")
    responses = [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]
    assert [r.comment for r in responses] == ["via the CLI"]


def test_a_redelivered_answer_has_one_effect(runtime: Runtime, inbox: InboxServer, relay: Relay) -> None:
    thread_id, request = request_mail(runtime, inbox, relay)
    answer = mail("reject: not today", replying_to=request)  # alice asked, so she may only reject
    for _ in range(3):
        send(inbox.config.port, answer, ALICE, [request.header("Reply-To")])
    responses = [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]
    assert len(responses) == 1 and responses[0].approved is False


def test_a_question_is_answered_with_the_replys_text(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    runtime.models["deploy"] = SequenceModel(
        [
            ModelCall("request_human_input", {"question": "Which environment?"}),
            ModelCall("done_for_now", {"message": "Noted."}),
        ]
    )
    thread_id, question = request_mail(runtime, inbox, relay)
    assert "what you write above the quoted text is your answer" in question.text()
    reply(inbox, question, "staging, please\n\nSent from my iPhone")
    response = next(e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse))
    assert (response.answer, response.approved) == ("staging, please", None)
    step(runtime, thread_id)
    assert runtime.load(thread_id).status is Status.DONE


def test_approvers_are_matched_whatever_the_case_of_their_address(
    runtime: Runtime, inbox: InboxServer, relay: Relay
) -> None:
    first = mail("deploy please")
    send(inbox.config.port, first, ALICE, [INBOX])
    (thread_id,) = runtime.store.ids()
    request = HumanRequest(
        request_id=new_id(), kind="question", text="Which tag?", approvers=("Alice@Example.COM",)
    )
    runtime.record(runtime.load(thread_id), request)
    run_deliveries(runtime)
    (question,) = relay.wait(1)
    reply(inbox, question, "v1.1.0")
    response = next(e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse))
    assert (response.responder, response.answer) == ("Alice@Example.COM", "v1.1.0")
