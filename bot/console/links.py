"""One-time sign-in links: mailed to an email address, or printed by ``outerloop dev``.

A link carries a random token; only its digest is kept, for ``LINK_TTL`` seconds, with the
person it signs in. Opening the link shows a button; pressing it (a CSRF-checked POST)
spends the token. So a mail scanner that fetches every link spends nothing, and a link
works once.
"""

from __future__ import annotations

import hashlib
import secrets
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from typing import cast
from urllib.parse import urlencode

import redis
import structlog

from bot.delivery.outbound import email_outbound
from bot.settings import Settings
from bot.state.store import key
from bot.web.api_tokens import InvalidPerson, person_of
from channels.email.compose import Composed, Copy

log = structlog.get_logger(__name__)

LINK_TTL = 15 * 60
"""Seconds a sign-in link works."""
LINK_PATH = "/console/signin/link"


def _key(token: str) -> str:
    return key("console", "link", hashlib.sha256(token.encode()).hexdigest())


def create_link(connection: redis.Redis, settings: Settings, person: str, ttl: int = LINK_TTL) -> str:
    """A one-time sign-in link for ``person`` (a Slack user id or an email address)."""
    token = secrets.token_urlsafe(32)
    connection.set(_key(token), person_of(person), ex=ttl)
    return f"{settings.console_base}{LINK_PATH}?{urlencode({'token': token})}"


def spend_link(connection: redis.Redis, token: str) -> str | None:
    """The person a link's token signs in, once; None if it is unknown, used or expired."""
    person = cast(bytes | None, connection.getdel(_key(token)))
    return person.decode() if person else None


def may_sign_in_by_mail(settings: Settings, address: str) -> bool:
    """Whether ``address`` may get a link: an approver, or listed in ``OUTERLOOP_CONSOLE_EMAILS``."""
    domain = address.rpartition("@")[2]
    allowed = {entry.lower() for entry in settings.console_emails}
    approvers = {a.lower() for a in (*settings.approvers, *settings.escalation_approvers)}
    approvers |= {a.lower() for names in settings.tool_approvers.values() for a in names}
    return address in approvers or address in allowed or domain in allowed or f"@{domain}" in allowed


def mail_link(connection: redis.Redis, settings: Settings, address: str) -> bool:
    """Mail a sign-in link to ``address`` if it may sign in and mail is configured; True if sent.

    The caller tells the browser the same thing either way, so nobody learns who may sign in."""
    try:
        person = person_of(address)
    except InvalidPerson:
        return False
    if "@" not in person or not settings.smtp_host or not may_sign_in_by_mail(settings, person):
        log.info("console.link_refused", reason="not allowed or no SMTP_HOST")
        return False
    outbound = email_outbound(settings)
    message = EmailMessage()
    message["From"] = outbound.letterhead.sender
    message["To"] = person
    message["Subject"] = "Your Outerloop sign-in link"
    message_id = make_msgid(domain=parseaddr(outbound.letterhead.sender)[1].rpartition("@")[2] or None)
    message["Message-ID"] = message_id
    link = create_link(connection, settings, person)
    message.set_content(
        f"Open this link to sign in to the Outerloop console as {person}:\n\n{link}\n\n"
        f"It works once, for {LINK_TTL // 60} minutes. If you did not ask for it, ignore this mail."
    )
    outbound.send(Composed(copies=(Copy(message=message, message_id=message_id, recipients=(person,)),)))
    log.info("console.link_mailed")
    return True
