"""The SMTP server of the inbox: aiosmtpd with a size limit, optional STARTTLS and AUTH,
and every refusal it sends logged with its reason.

aiosmtpd answers some refusals itself (552 for an oversized mail, 530 before AUTH, syntax
errors), without calling the handler; every reply goes through ``SMTP.push``, so the
server logs refusals there, whoever made them.

Reply addresses carry secret tokens in their plus tag, so no log line may hold one: the
refusals logged here blank the tags out, and so does a filter on aiosmtpd's own logger
(``mail.log``, which logs every command line, RCPT TO included, at INFO and DEBUG).
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AnyStr

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from channels.email.addresses import redacted

log = structlog.get_logger(__name__)

AIOSMTPD_LOGGER = "mail.log"


class InboxConfigError(ValueError):
    """The inbox's listening settings do not fit together; the message says what to set."""


@dataclass(frozen=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    data_size_limit: int = 10 * 1024 * 1024
    """Bytes; bigger mail gets ``552`` (announced in EHLO as SIZE, so clients know up front)."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    require_tls: bool = False
    """Refuse mail until the client has said STARTTLS."""
    username: str | None = None
    password: str | None = None
    """When set, clients must AUTH (PLAIN or LOGIN) with these, over TLS, before sending."""


class LoggingSMTP(SMTP):
    """aiosmtpd's SMTP session, logging each 4xx/5xx reply with the session's context."""

    data_envelope: Envelope | None = None
    """The envelope of the mail being received: aiosmtpd resets ``envelope`` before it
    sends the reply to DATA, and a refusal's log line should still say whose mail it was."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self.data_envelope = self.envelope
        try:
            await super().smtp_DATA(arg)
        finally:
            self.data_envelope = None

    async def push(self, status: AnyStr) -> None:
        text = status.decode(errors="replace") if isinstance(status, bytes) else str(status)
        if text[:1] in ("4", "5"):
            envelope = self.data_envelope or self.envelope
            log.warning(
                "smtp.refused",
                reply=redacted(text),
                peer=str(self.session.peer) if self.session else None,
                sender=envelope.mail_from if envelope else None,
                recipients=[redacted(r) for r in envelope.rcpt_tos] if envelope else [],
            )
        await super().push(status)


class RedactingFilter(logging.Filter):
    """Blanks the tags of plus-addresses out of a log record's message, at every level."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redacted(record.getMessage()), None
        return True


_REDACTING = RedactingFilter()


class InboxServer(Controller):
    """The inbox listening on ``config.host:config.port`` in a thread of its own."""

    def __init__(self, handler: Any, config: ListenConfig) -> None:
        tls = _tls_context(config)
        credentials = _credentials(config, tls)
        logging.getLogger(AIOSMTPD_LOGGER).addFilter(_REDACTING)  # adding it again changes nothing
        super().__init__(
            handler,
            hostname=config.host,
            port=config.port,
            server_hostname=socket.gethostname(),  # socket.getfqdn() may wait on DNS
            data_size_limit=config.data_size_limit,
            tls_context=tls,
            require_starttls=config.require_tls,
            auth_required=credentials is not None,
            auth_require_tls=True,
            authenticator=_authenticator(*credentials) if credentials else None,
        )
        self.config = config

    def factory(self) -> SMTP:
        return LoggingSMTP(self.handler, **self.SMTP_kwargs)


def _tls_context(config: ListenConfig) -> ssl.SSLContext | None:
    if (config.tls_cert is None) != (config.tls_key is None):
        raise InboxConfigError("STARTTLS needs both SMTP_TLS_CERT and SMTP_TLS_KEY")
    if config.tls_cert is None or config.tls_key is None:
        if config.require_tls:
            raise InboxConfigError("SMTP_REQUIRE_TLS needs SMTP_TLS_CERT and SMTP_TLS_KEY")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise InboxConfigError(f"cannot load SMTP_TLS_CERT/SMTP_TLS_KEY: {exc}") from exc
    return context


def _credentials(config: ListenConfig, tls: ssl.SSLContext | None) -> tuple[str, str] | None:
    if not config.username and not config.password:
        return None
    if not config.username or not config.password:
        raise InboxConfigError("AUTH needs both SMTP_LISTEN_USERNAME and SMTP_LISTEN_PASSWORD")
    if tls is None:
        raise InboxConfigError(
            "AUTH needs STARTTLS (SMTP_TLS_CERT, SMTP_TLS_KEY): passwords never go in clear"
        )
    return config.username, config.password


def _authenticator(username: str, password: str) -> Any:
    expected = (username.encode(), password.encode())

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        given = (auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else (b"", b"")
        ok = hmac.compare_digest(given[0], expected[0]) & hmac.compare_digest(given[1], expected[1])
        return AuthResult(success=ok, handled=False)

    return authenticate
