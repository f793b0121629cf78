"""Sending over SMTP the ways relays want it: STARTTLS with AUTH, implicit TLS; and failures
raise, so the delivery job is retried."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.events import AgentMessage, Origin, Trigger
from agent.thread import Thread
from bot.runtime import Runtime
from channels.email.compose import Letterhead
from channels.email.outbound import EmailOutbound, RelayConfig, Security
from tests.email_channel.conftest import INBOX
from tests.email_channel.servers import Relay, certificate, server_tls
from tests.services import free_port

LETTERHEAD = Letterhead(sender=f"Outerloop <{INBOX}>", inbox=INBOX)


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate the outbound side trusts, as a company CA would be trusted."""
    cert, key = certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return cert, key


@pytest.fixture
def conversation(runtime: Runtime) -> tuple[Thread, AgentMessage]:
    origin = Origin(channel="email", sender="bob@example.com", address={"to": "bob@example.com"})
    started = runtime.converse("email:m1@example.com", "deploy", Trigger(text="status?", origin=origin))
    message = AgentMessage(text="All green.")
    return runtime.store.append(started.thread, message).thread, message


def serving(relay: Relay) -> Iterator[Relay]:
    controller = relay.controller()
    controller.start()
    yield relay
    controller.stop()


# The implicit-TLS relay allows AUTH without STARTTLS (its whole session is TLS); aiosmtpd warns.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_mail_goes_out_over_tls_with_auth(
    runtime: Runtime,
    certificates: tuple[Path, Path],
    conversation: tuple[Thread, AgentMessage],
    security: Security,
) -> None:
    relay = Relay(tls=server_tls(*certificates), implicit=security == "ssl", credentials=("bot", "pw"))
    for running in serving(relay):
        config = RelayConfig("127.0.0.1", running.port, security=security, username="bot", password="pw")
        receipt = EmailOutbound(config, LETTERHEAD).deliver(*conversation, runtime.store)
        (sent,) = running.wait(1)
    assert receipt is not None and sent.header("Message-ID") == f"<{receipt['message_id']}>"
    thread, _ = conversation
    assert runtime.thread_of(f"email:{receipt['message_id']}") == thread.id, "replies find the thread"
    assert sent.text().startswith("All green.") and sent.recipients == ["bob@example.com"]


def test_a_relay_that_cannot_be_reached_or_trusted_raises_for_a_retry(
    runtime: Runtime, tmp_path: Path, conversation: tuple[Thread, AgentMessage]
) -> None:
    down = EmailOutbound(RelayConfig("127.0.0.1", free_port(), security="none", timeout=5), LETTERHEAD)
    with pytest.raises(OSError):
        down.deliver(*conversation, runtime.store)
    relay = Relay(tls=server_tls(*certificate(tmp_path)))  # a certificate nobody trusts
    for running in serving(relay):
        untrusted = EmailOutbound(RelayConfig("127.0.0.1", running.port, security="starttls"), LETTERHEAD)
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.deliver(*conversation, runtime.store)
        wrong_login = EmailOutbound(
            RelayConfig("127.0.0.1", running.port, security="none", username="x", password="y"), LETTERHEAD
        )
        with pytest.raises(smtplib.SMTPException):
            wrong_login.deliver(*conversation, runtime.store)
        assert running.mails == []
