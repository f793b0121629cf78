"""The inbox over real SMTP on loopback: what it takes, what it refuses and why, and that
a ``250`` always means the mail is stored."""

from __future__ import annotations

import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from agent.events import Trigger
from bot.doors.smtp import inbox_config
from bot.runtime import Runtime
from channels.email.addresses import route
from channels.email.inbound import Inbox
from channels.email.server import InboxConfigError, InboxServer, ListenConfig
from tests.email_channel.conftest import ALICE, INBOX, SIZE_LIMIT
from tests.email_channel.servers import certificate, mail, send
from tests.services import REPO, free_port
from tests.test_cli import outerloop

CORPUS = REPO / "tests" / "email_corpus"


def thread_of(runtime: Runtime, message: EmailMessage) -> str | None:
    return runtime.thread_of(route(str(message["Message-ID"])))


def triggers(runtime: Runtime, thread_id: str) -> list[Trigger]:
    return [e for e in runtime.load(thread_id).events if isinstance(e, Trigger)]


def test_a_mail_starts_a_thread_that_is_stored_before_the_250(runtime: Runtime, inbox: InboxServer) -> None:
    first = mail("Please deploy the latest tag to staging.\n\n-- \nAlice")
    send(inbox.config.port, first, ALICE, [INBOX])
    thread_id = thread_of(runtime, first)  # no waiting: the 250 came after the append
    assert thread_id is not None
    (trigger,) = triggers(runtime, thread_id)
    assert trigger.text == "deploy the latest tag\n\nPlease deploy the latest tag to staging."
    assert trigger.origin.sender == ALICE
    assert trigger.origin.address["to"] == ALICE and trigger.origin.address["inbox"] == INBOX
    assert runtime.load(thread_id).agent == "deploy"


def test_each_inbox_address_starts_threads_for_its_agent(runtime: Runtime, inbox: InboxServer) -> None:
    note = mail("remember the milk", to="notes@example.com")
    send(inbox.config.port, note, ALICE, ["Notes@Example.com"])
    thread_id = thread_of(runtime, note)
    assert thread_id is not None and runtime.load(thread_id).agent == "notes"


def test_replies_continue_the_thread_of_any_message_they_reference(
    runtime: Runtime, inbox: InboxServer
) -> None:
    first = mail("deploy please")
    send(inbox.config.port, first, ALICE, [INBOX])
    reply = mail("to staging", sender="carol@example.com", subject="Re: deploy the latest tag")
    reply["In-Reply-To"] = "<unknown@elsewhere>"
    reply["References"] = f"{first['Message-ID']} <unknown@elsewhere>"
    send(inbox.config.port, reply, "carol@example.com", [INBOX])
    thread_id = thread_of(runtime, first)
    assert thread_id is not None
    assert [t.text for t in triggers(runtime, thread_id)] == [
        "deploy the latest tag\n\ndeploy please",
        "to staging",
    ]
    assert thread_of(runtime, reply) is None, "a reply joins a thread; it starts no conversation of its own"


def test_a_redelivered_mail_has_one_effect(runtime: Runtime, inbox: InboxServer) -> None:
    first = mail("deploy please")
    raw = first.as_bytes(policy=policy.SMTP)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: send(inbox.config.port, raw, ALICE, [INBOX]), range(4)))
    send(inbox.config.port, raw, ALICE, [INBOX])
    thread_id = thread_of(runtime, first)
    assert thread_id is not None and len(triggers(runtime, thread_id)) == 1
    assert len(runtime.store.ids()) == 1


def test_unknown_recipients_are_refused(runtime: Runtime, inbox: InboxServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(inbox.config.port, mail("hi", to="root@example.com"), ALICE, ["root@example.com"])
    code, reason = refused.value.recipients["root@example.com"]
    assert code == 550 and b"no such mailbox" in reason
    assert runtime.store.ids() == []


def test_senders_not_on_the_allowlist_are_refused_and_logged(runtime: Runtime, inbox: InboxServer) -> None:
    with capture_logs() as logs, pytest.raises(smtplib.SMTPSenderRefused) as envelope:
        send(inbox.config.port, mail("hi", sender="mallory@evil.example"), "mallory@evil.example", [INBOX])
    assert envelope.value.smtp_code == 550 and b"not allowed" in envelope.value.smtp_error
    assert any(e["event"] == "smtp.refused" and "mallory@evil.example" in e["reply"] for e in logs)
    # An allowed envelope does not launder a From: that is not allowed.
    with pytest.raises(smtplib.SMTPDataError) as author:
        send(inbox.config.port, mail("hi", sender="mallory@evil.example"), ALICE, [INBOX])
    assert author.value.smtp_code == 550 and b"author <mallory@evil.example>" in author.value.smtp_error
    send(inbox.config.port, mail("hi", sender="partner@elsewhere.org"), "partner@elsewhere.org", [INBOX])
    assert len(runtime.store.ids()) == 1


def test_oversized_mail_is_refused_with_552(runtime: Runtime, inbox: InboxServer) -> None:
    big = mail(("x" * 70 + "\n") * (SIZE_LIMIT // 70 + 1))
    with pytest.raises(smtplib.SMTPSenderRefused) as announced:  # smtplib announces SIZE= up front
        send(inbox.config.port, big, ALICE, [INBOX])
    assert announced.value.smtp_code == 552
    with capture_logs() as logs, smtplib.SMTP("127.0.0.1", inbox.config.port) as client:
        client.ehlo()
        assert client.mail(ALICE)[0] == 250 and client.rcpt(INBOX)[0] == 250
        code, reply = client.data(big.as_string())
    assert code == 552 and b"Too much mail data" in reply
    assert any(e["event"] == "smtp.refused" and e["reply"].startswith("552") for e in logs)
    assert runtime.store.ids() == []


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        ("malformed_multipart.eml", b"5.6.0 malformed MIME (start boundary not found)"),
        ("invalid_base64.eml", b"5.6.0 malformed MIME (invalid base64 length)"),
        (
            "attachments_only.eml",
            b"5.6.0 the request is empty: say what the agent should do "
            b"(the mail has only attachments (release-notes.pdf)",
        ),
    ],
)
def test_unreadable_mail_is_refused_with_its_reason(
    runtime: Runtime, inbox: InboxServer, name: str, reply: bytes
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(inbox.config.port, (CORPUS / name).read_bytes(), ALICE, [INBOX])
    assert refused.value.smtp_code == 550 and reply in refused.value.smtp_error
    assert runtime.store.ids() == []
    send(inbox.config.port, mail("still here"), ALICE, [INBOX])  # the inbox goes on serving


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty_body.eml", "deploy the latest tag"),
        ("unknown_charset.eml", "list the tags\n\nWhich tags are there? Na\u00efve question, I know."),
        ("shift_jis.eml", "\u30c7\u30d7\u30ed\u30a4\u4f9d\u983c\n\n\u672c\u756a\u74b0\u5883\u306b v1.2.0"),
        ("html_only.eml", "staging deploy\n\nHi team,\n\nplease deploy v1.2.0 to staging"),
    ],
)
def test_odd_but_readable_mail_starts_a_thread(
    runtime: Runtime, inbox: InboxServer, name: str, text: str
) -> None:
    raw = (CORPUS / name).read_bytes()
    send(inbox.config.port, raw, ALICE, [INBOX])
    (thread_id,) = runtime.store.ids()
    assert triggers(runtime, thread_id)[0].text.startswith(text)


def test_a_subject_with_attachments_is_taken_and_the_attachments_named(
    runtime: Runtime, inbox: InboxServer
) -> None:
    message = mail("", subject="release notes attached")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="notes.pdf")
    send(inbox.config.port, message, ALICE, [INBOX])
    (thread_id,) = runtime.store.ids()
    assert (
        triggers(runtime, thread_id)[0].text == "release notes attached\n\n(attachments not read: notes.pdf)"
    )


def test_replies_without_new_text_auto_replies_and_own_mail_are_refused(
    runtime: Runtime, inbox: InboxServer
) -> None:
    first = mail("deploy please")
    send(inbox.config.port, first, ALICE, [INBOX])
    quoted_only = mail("> deploy please", subject="Re: deploy")
    quoted_only["In-Reply-To"] = first["Message-ID"]
    away = mail("I am out of office")
    away["Auto-Submitted"] = "auto-replied"
    own = mail("loop", sender=INBOX)
    for message, reason in [
        (quoted_only, b"no new text"),
        (away, b"Auto-Submitted"),
        (own, b"own address"),
    ]:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(inbox.config.port, message, ALICE, [INBOX])
        assert refused.value.smtp_code == 550 and reason in refused.value.smtp_error
    assert len(runtime.store.ids()) == 1


def test_mail_the_inbox_cannot_store_gets_a_temporary_failure(runtime: Runtime) -> None:
    down = Runtime(
        runtime.settings, redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0"), runtime.agents
    )
    server = InboxServer(Inbox(down, inbox_config(runtime.settings)), ListenConfig(port=free_port()))
    server.start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(server.config.port, mail("deploy please"), ALICE, [INBOX])
    finally:
        server.stop()
    assert refused.value.smtp_code == 451, "the sending server keeps the mail and tries again"


def test_auth_and_starttls_when_configured(runtime: Runtime, tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    config = ListenConfig(port=free_port(), tls_cert=cert, tls_key=key, username="relay", password="s3cret")
    server = InboxServer(Inbox(runtime, inbox_config(runtime.settings)), config)
    server.start()
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        with smtplib.SMTP("127.0.0.1", config.port) as client:
            client.ehlo()
            assert "auth" not in client.esmtp_features, "AUTH is offered only after STARTTLS"
            assert client.mail(ALICE)[0] == 530
        with smtplib.SMTP("127.0.0.1", config.port) as client:
            client.starttls(context=trusted)
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("relay", "wrong")
        with smtplib.SMTP("127.0.0.1", config.port) as client:
            client.starttls(context=trusted)
            client.login("relay", "s3cret")
            client.send_message(mail("deploy please"), from_addr=ALICE, to_addrs=[INBOX])
    finally:
        server.stop()
    assert len(runtime.store.ids()) == 1


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (ListenConfig(username="relay", password="s3cret"), "AUTH needs STARTTLS"),
        (ListenConfig(username="relay"), "both SMTP_LISTEN_USERNAME and SMTP_LISTEN_PASSWORD"),
        (ListenConfig(require_tls=True), "SMTP_REQUIRE_TLS needs"),
        (ListenConfig(tls_cert=Path("/nonexistent.pem"), tls_key=Path("/nonexistent.key")), "cannot load"),
    ],
)
def test_settings_that_do_not_fit_together_say_what_to_set(
    runtime: Runtime, config: ListenConfig, problem: str
) -> None:
    with pytest.raises(InboxConfigError, match=problem):
        InboxServer(Inbox(runtime, inbox_config(runtime.settings)), config)


def test_outerloop_smtp_refuses_to_start_with_a_mistake_in_its_settings(env: dict[str, str]) -> None:
    unknown_agent = outerloop("smtp", env={**env, "SMTP_RECIPIENTS": "ops@example.com=nope"}, check=False)
    assert "Error: no agent named 'nope'" in unknown_agent
    no_tls = outerloop(
        "smtp", env={**env, "SMTP_LISTEN_PASSWORD": "pw", "SMTP_LISTEN_USERNAME": "u"}, check=False
    )
    assert "Error: the inbox cannot start: AUTH needs STARTTLS" in no_tls
