"""``EmailOutbound``: the email channel's outbound side, sending threaded mail over SMTP.

Mail goes through a relay (your provider's SMTP submission service, which signs it with
DKIM and is covered by your domain's SPF), with STARTTLS, implicit TLS or, for a relay on
the same host, neither. A failure raises, and the delivery job is retried with backoff.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Literal

import structlog

from agent.events import Event
from agent.thread import Thread
from channels.email.addresses import route
from channels.email.compose import SHOWN, Composed, Letterhead, compose
from channels.gateway import Receipt, Receipts

log = structlog.get_logger(__name__)

Security = Literal["starttls", "ssl", "none"]


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


class EmailOutbound:
    """Implements ``channels.gateway.Outbound`` for threads that came in by email."""

    interests = SHOWN

    def __init__(self, relay: RelayConfig, letterhead: Letterhead) -> None:
        self.relay = relay
        self.letterhead = letterhead

    def deliver(self, thread: Thread, event: Event, receipts: Receipts) -> Receipt | None:
        composed = compose(thread, event, receipts, self.letterhead)
        if composed is None:
            log.warning("email.nothing_to_send", thread_id=thread.id, event_type=event.type)
            return None
        # Replies to any of these mails continue the thread; for a request, each copy's
        # Message-ID also finds it from a reply token and the address it was given to. Bound
        # before sending: an approver may answer the moment the mail arrives.
        for copy in composed.copies:
            receipts.bind_route(route(copy.message_id), thread.id)
        self.send(composed)
        log.info(
            "email.sent",
            thread_id=thread.id,
            event_type=event.type,
            message_id=composed.message_id,
            recipients=list(composed.recipients),
        )
        return {"message_id": composed.message_id}

    def send(self, composed: Composed) -> None:
        """Send every copy in one session with the relay."""
        relay = self.relay
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if relay.security == "ssl":
            client = smtplib.SMTP_SSL(relay.host, relay.port, timeout=relay.timeout, context=context)
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout)
        with client:
            if relay.security == "starttls":
                client.starttls(context=context)
            if relay.username and relay.password:
                client.login(relay.username, relay.password)
            for copy in composed.copies:
                client.send_message(
                    copy.message,
                    from_addr=parseaddr(self.letterhead.sender)[1],
                    to_addrs=list(copy.recipients),
                )
