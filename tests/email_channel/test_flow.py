"""Email from first mail to result, over real SMTP on loopback: our inbox, a capturing relay
for what the bot sends, smtplib as the people's mail client."""

from __future__ import annotations

import smtplib
import socket
from pathlib import Path

import pytest

from agent.events import HumanResponse, Trigger
from agent.thread import Status
from bot.runtime import Runtime
from channels.config import report_origin
from channels.email.addresses import route, split_tag
from channels.email.server import InboxServer
from tests.email_channel.conftest import ALICE, INBOX, RITA
from tests.email_channel.servers import Relay, mail, send
from tests.email_channel.test_answers import step
from tests.services import Workers, cli_args, wait_for


def test_mail_approval_by_reply_and_a_threaded_result(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    first = mail("Please deploy the latest tag to staging.", sender=RITA)
    send(inbox.config.port, first, RITA, [INBOX])
    thread_id = runtime.thread_of(route(str(first["Message-ID"])))
    assert thread_id is not None
    step(runtime, thread_id)

    notice, request = relay.wait(2)  # rita asked, so she is told; alice approves
    assert notice.recipients == [RITA] and "who are asked in a mail of their own" in notice.text()
    assert request.recipients == [ALICE] and request.sender == INBOX
    assert request.header("Subject") == "Re: deploy the latest tag"
    assert request.header("In-Reply-To") == first["Message-ID"]
    assert request.header("References") == first["Message-ID"]
    assert request.header("Reply-To").startswith("outerloop+")

    send(inbox.config.port, mail("approve", replying_to=request), ALICE, [request.header("Reply-To")])
    assert runtime.load(thread_id).status is Status.RUNNING
    step(runtime, thread_id)

    assert deploy_log.read_text() == "v1.1.0 staging\n"
    *_, result = relay.wait(3)
    assert "Done: deployed v1.1.0 to staging." in result.text()
    assert result.header("Subject") == "Re: deploy the latest tag"
    assert result.header("In-Reply-To") == notice.header("Message-ID")
    assert result.header("References").split() == [first["Message-ID"], notice.header("Message-ID")]
    assert result.header("Reply-To") == INBOX
    assert runtime.load(thread_id).status is Status.DONE

    # Answering the result mail opens the thread again, with the new message.
    send(inbox.config.port, mail("now production, please", sender=RITA, replying_to=result), RITA, [INBOX])
    thread = runtime.load(thread_id)
    assert thread.status is Status.RUNNING
    assert [e.text for e in thread.events if isinstance(e, Trigger)][-1] == "now production, please"


def test_a_scheduled_thread_starts_a_fresh_conversation_that_replies_continue(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    origin = report_origin("email:ops@example.com", sender="schedule:nightly")  # as schedules make it
    trigger = Trigger(text="nightly deploy", origin=origin)
    thread_id = runtime.converse("schedule:nightly:1", "deploy", trigger).thread.id
    step(runtime, thread_id)
    notice, request = relay.wait(2)
    assert notice.recipients == ["ops@example.com"] and notice.header("Reply-To") == INBOX
    assert request.recipients == [ALICE], "the approver is asked in a mail of her own"
    for sent in (notice, request):
        assert sent.header("Subject") == "nightly deploy"
        assert sent.header("In-Reply-To") == "" and sent.header("References") == ""
        assert sent.header("Auto-Submitted") == "auto-generated"

    send(inbox.config.port, mail("approve", replying_to=request), ALICE, [request.header("Reply-To")])
    step(runtime, thread_id)
    *_, result = relay.wait(3)
    assert deploy_log.read_text() == "v1.1.0 staging\n"
    assert result.header("Subject") == "Re: nightly deploy" and result.recipients == ["ops@example.com"]
    assert result.header("In-Reply-To") == notice.header("Message-ID"), "the mail ops got"


def test_the_same_flow_through_the_smtp_and_worker_processes(
    env: dict[str, str], runtime: Runtime, relay: Relay, workers: Workers, deploy_log: Path
) -> None:
    port = int(env["SMTP_LISTEN_PORT"])
    workers.start(1, args=cli_args("smtp"))
    workers.start(1)
    wait_for(lambda: _listening(port), "outerloop smtp to listen")

    first = mail("Please deploy the latest tag to staging.", sender=RITA)
    send(port, first, RITA, [INBOX])
    notice, request = relay.wait(2)
    assert request.header("In-Reply-To") == first["Message-ID"]
    answer = mail("approve\n\nthanks!", replying_to=request)
    send(port, answer, ALICE, [request.header("Reply-To")])
    send(port, answer, ALICE, [request.header("Reply-To")])  # delivered twice: one effect

    *_, result = relay.wait(3)
    assert "deployed v1.1.0 to staging" in result.text()
    assert result.header("In-Reply-To") == notice.header("Message-ID")
    assert deploy_log.read_text() == "v1.1.0 staging\n"
    (thread_id,) = runtime.store.ids()
    wait_for(lambda: runtime.load(thread_id).status is Status.DONE, "the thread to be done")
    _, token = split_tag(request.header("Reply-To"))
    assert workers.log is not None
    logged = workers.log.read_text()
    # aiosmtpd's per-command INFO lines (which the redacting filter rewrites) are held back now.
    assert token and token not in logged, "the processes' logs hold no reply token"


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_an_approval_by_mail_may_change_the_arguments_first(
    runtime: Runtime, inbox: InboxServer, relay: Relay, deploy_log: Path
) -> None:
    first = mail("Please deploy the latest tag to staging.", sender=RITA)
    send(inbox.config.port, first, RITA, [INBOX])
    (thread_id,) = runtime.store.ids()
    step(runtime, thread_id)
    _, request = relay.wait(2)
    assert "    approve\n    tag: v1.2.0" in request.text()

    bad = mail("approve\nenvironment: moon", replying_to=request)
    with pytest.raises(smtplib.SMTPResponseException, match="invalid arguments for deploy"):
        send(inbox.config.port, bad, ALICE, [request.header("Reply-To")])
    edited = mail("approve\nenvironment: production\n\nship it", replying_to=request)
    send(inbox.config.port, edited, ALICE, [request.header("Reply-To")])
    response = [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)][-1]
    assert response.arguments == {"tag": "v1.1.0", "environment": "production"}
    assert (response.channel, response.comment, response.responder) == ("email", "ship it", ALICE)
    step(runtime, thread_id)
    assert deploy_log.read_text() == "v1.1.0 production\n"
