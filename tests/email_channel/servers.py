"""Mail servers and clients for the email tests: a capturing relay, smtplib, a TLS certificate."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.services import free_port, wait_for


@dataclass(frozen=True)
class Captured:
    """A mail the relay took: the envelope and the parsed message."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    def header(self, name: str) -> str:
        return str(self.message.get(name, ""))

    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert isinstance(body, EmailMessage)
        return str(body.get_content()).replace("\r\n", "\n")


@dataclass
class Relay:
    """An aiosmtpd server playing the outbound relay, keeping every mail it is given.

    ``tls`` makes it offer STARTTLS (or, with ``implicit``, speak TLS from the first byte);
    ``credentials`` makes it require AUTH."""

    tls: ssl.SSLContext | None = None
    implicit: bool = False
    credentials: tuple[str, str] | None = None
    port: int = field(default_factory=free_port)
    mails: list[Captured] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.original_content or b"")
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.mails.append(Captured(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        given = (data.login.decode(), data.password.decode()) if isinstance(data, LoginPassword) else None
        ok = given is not None and given == self.credentials
        return AuthResult(success=ok, handled=False)

    def controller(self) -> Controller:
        options: dict[str, Any] = {}
        if self.tls is not None and self.implicit:
            options["ssl_context"] = self.tls
        elif self.tls is not None:
            options["tls_context"] = self.tls
        if self.credentials:
            options.update(authenticator=self.authenticate, auth_required=True)
            # aiosmtpd counts only STARTTLS as TLS; an implicit-TLS session is encrypted too.
            options["auth_require_tls"] = not self.implicit
        return Controller(self, hostname="127.0.0.1", port=self.port, server_hostname="relay.test", **options)

    def wait(self, count: int) -> list[Captured]:
        """The first ``count`` mails, once that many have arrived."""
        wait_for(lambda: len(self.mails) >= count, f"{count} mails at the relay")
        with self.lock:
            return self.mails[:count]


def mail(
    text: str,
    *,
    sender: str = "alice@example.com",
    to: str = "outerloop@example.com",
    subject: str = "deploy the latest tag",
    replying_to: Captured | None = None,
) -> EmailMessage:
    """A plain text mail as a mail client writes it; ``replying_to`` makes it a reply."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="client.example.com")
    if replying_to is not None:
        parent = replying_to.header("Message-ID")
        subject = f"Re: {replying_to.header('Subject').removeprefix('Re: ')}"
        message["In-Reply-To"] = parent
        message["References"] = f"{replying_to.header('References')} {parent}".strip()
        quoted = "\n".join(f"> {line}" for line in replying_to.text().splitlines())
        text = f"{text}\n\nOn Mon, 3 Jun 2024 at 10:12, Outerloop <{replying_to.sender}> wrote:\n{quoted}\n"
    message["Subject"] = subject
    message.set_content(text)
    return message


def send(port: int, message: EmailMessage | bytes, sender: str, recipients: list[str]) -> None:
    """Deliver over SMTP as a sending mail server would; raises smtplib's errors on refusal."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if isinstance(message, bytes):
            client.sendmail(sender, recipients, message)
        else:
            client.send_message(message, from_addr=sender, to_addrs=recipients)


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
