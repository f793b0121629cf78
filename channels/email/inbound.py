"""The inbox's aiosmtpd handler: checks each mail, then persists it before saying ``250``.

MAIL FROM and RCPT TO are checked as they come (allowed senders, configured recipients);
after DATA the mail is parsed and its author checked again (the From: header is who the
agent answers, and who an approval is credited to). A mail to a plus-addressed reply
address is an answer to a request (``replies``): it must also come over an authenticated
session when the inbox requires AUTH. Any other mail starts a conversation or,
when it replies to one the inbox knows (Message-ID / In-Reply-To / References), continues
it. The event is stored through the ``Gateway`` before the handler returns, so a ``250``
always means "persisted" (invariant 3); a redelivery carries the same Message-ID, which
is the event's dedupe key. Refusals are raised as ``Refused`` and become SMTP replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from agent.events import Origin, Trigger
from channels.email import CHANNEL
from channels.email.addresses import Allowlist, normalize, redacted, route, split_tag, trimmed
from channels.email.parse import InboundMail, MalformedMail, parse_mail
from channels.email.replies import answer_by_mail
from channels.email.status import ACCEPTED, DUPLICATE, TRY_LATER, Refused
from channels.gateway import Gateway
from channels.request_text import BLANK_REQUEST

log = structlog.get_logger(__name__)

REFERENCES_KEPT = 20
"""Message-IDs of a mail's References kept in its trigger, to thread replies to it."""


@dataclass(frozen=True)
class InboxConfig:
    recipients: Mapping[str, str]
    """The addresses the inbox takes mail for, each with the agent new threads go to."""
    senders: Allowlist
    own_addresses: frozenset[str] = field(default_factory=frozenset)
    """Addresses the bot sends from: mail from them is its own coming back (a loop)."""
    require_auth: bool = False
    """The inbox requires AUTH (only a trusted relay delivers): an answer from a session
    that did not authenticate is refused, whatever the server in front let through."""


@dataclass(frozen=True)
class Delivery:
    """What the SMTP session says about a mail besides its bytes."""

    sender: str
    """The envelope sender (MAIL FROM)."""
    recipients: tuple[str, ...]
    authenticated: bool
    """Whether the session authenticated (AUTH) before sending."""


class Inbox:
    """aiosmtpd calls ``handle_MAIL``, ``handle_RCPT`` and ``handle_DATA`` by name."""

    def __init__(self, gateway: Gateway, config: InboxConfig) -> None:
        self.gateway = gateway
        self.config = config
        self.recipients = {normalize(address): agent for address, agent in config.recipients.items()}

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if not self.config.senders.allows(address):
            return f"550 5.7.1 sender <{address}> is not allowed to mail this inbox"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if split_tag(address)[0] not in self.recipients:
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        delivery = Delivery(envelope.mail_from or "", tuple(envelope.rcpt_tos), bool(session.authenticated))
        # Redis calls block; run them off the event loop so other sessions go on meanwhile.
        return await asyncio.get_running_loop().run_in_executor(None, self.receive, delivery, raw)

    def receive(self, delivery: Delivery, raw: bytes) -> str:
        """The SMTP reply for one mail: 250 once it is stored, else why not (never raises)."""
        try:
            return self._receive(delivery, raw)
        except Refused as refusal:
            return refusal.status
        except Exception:  # e.g. Redis down: the sending server keeps the mail and retries
            log.exception("email.store_failed", recipients=[redacted(r) for r in delivery.recipients])
            return TRY_LATER

    def _receive(self, delivery: Delivery, raw: bytes) -> str:
        try:
            mail = parse_mail(raw)
        except MalformedMail as exc:
            raise Refused(550, "5.6.0", str(exc)) from exc
        self._check_author(mail)
        recipients = delivery.recipients
        answers = sorted({normalize(r) for r in recipients if split_tag(r)[1] is not None})
        if len(answers) > 1:
            raise Refused(550, "5.5.3", "send one answer per mail, to one request's reply address")
        if answers and self.config.require_auth and not delivery.authenticated:
            raise Refused(
                550,
                "5.7.1",
                "answers are taken only from a session that authenticated (AUTH); nothing changed",
            )
        if answers:
            return answer_by_mail(self.gateway, answers[0], mail, delivery.sender)
        return self._converse(split_tag(recipients[0])[0], mail)

    def _check_author(self, mail: InboundMail) -> None:
        if mail.auto_submitted:
            raise Refused(550, "5.7.1", "automatic mail (Auto-Submitted) is not taken, to avoid mail loops")
        if mail.author in self.config.own_addresses:
            raise Refused(550, "5.7.1", f"mail from this inbox's own address <{mail.author}> is not taken")
        if not self.config.senders.allows(mail.author):
            raise Refused(550, "5.7.1", f"author <{mail.author}> is not allowed to mail this inbox")

    def _converse(self, inbox: str, mail: InboundMail) -> str:
        conversation = self._known_conversation(mail)
        trigger = Trigger(
            text=_trigger_text(mail, new=conversation is None),
            origin=Origin(channel=CHANNEL, sender=mail.author, address=_reply_address(mail, inbox)),
            key=route(mail.identity),
        )
        submitted = self.gateway.converse(
            conversation or route(mail.identity), self.recipients[inbox], trigger
        )
        log.info(
            "email.accepted",
            thread_id=submitted.thread.id,
            message_id=mail.identity,
            sender=mail.author,
            reply=conversation is not None,
            duplicate=not submitted.applied,
        )
        return ACCEPTED if submitted.applied else DUPLICATE

    def _known_conversation(self, mail: InboundMail) -> str | None:
        """The route of the nearest message this mail replies to that belongs to a thread."""
        for message_id in (*mail.in_reply_to, *reversed(mail.references)):
            if self.gateway.thread_of(route(message_id)) is not None:
                return route(message_id)
        return None


def _trigger_text(mail: InboundMail, new: bool) -> str:
    """A new conversation's subject often is the request; a reply's subject is just "Re: ..."."""
    parts = [mail.subject] if new and mail.subject else []
    if mail.text:
        parts.append(mail.text)
    if not mail.text and not new:
        raise Refused(550, "5.6.0", "the reply has no new text above the quoted mail; nothing changed")
    if not "".join(parts).strip():
        what = f"only attachments ({', '.join(mail.attachments)})" if mail.attachments else "no text"
        raise Refused(550, "5.6.0", f"{BLANK_REQUEST} (the mail has {what}; write it in the subject or body)")
    if mail.attachments:
        parts.append(f"(attachments not read: {', '.join(mail.attachments)})")
    return "\n\n".join(parts)


def _reply_address(mail: InboundMail, inbox: str) -> dict[str, str]:
    """What the outbound side needs to answer in the same mail conversation."""
    address = {"to": ", ".join(mail.reply_to), "inbox": inbox, "subject": mail.subject}
    if mail.message_id:
        address["message_id"] = mail.message_id
    chain = mail.references or mail.in_reply_to
    if chain:
        address["references"] = " ".join(trimmed(chain, REFERENCES_KEPT))
    return address
