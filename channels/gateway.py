"""What a channel may ask of the runtime, and what the runtime asks of a channel.

Channels know nothing of Redis or RQ: inbound, they hand verified, normalized
events to a ``Gateway``; outbound, they implement ``Outbound`` to put an agent's
message or a human request into their native form. ``bot.runtime.Runtime`` is the
``Gateway``; ``bot.delivery.outbox`` calls each channel's ``Outbound``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from agent.approvals import Standing
from agent.events import Event, Trigger
from agent.thread import Thread


class Conflict(ValueError):
    """The action does not fit the thread's current state (e.g. a request answered already)."""


class NotAllowed(PermissionError):
    """The person may not answer this request (invariant 7)."""


class Submitted(Protocol):
    """The outcome of handing over an event: the thread as stored, and whether it was new."""

    @property
    def thread(self) -> Thread: ...

    @property
    def applied(self) -> bool: ...


class Gateway(Protocol):
    def converse(self, route: str, agent: str, trigger: Trigger) -> Submitted:
        """Add ``trigger`` to the thread of conversation ``route`` (a Slack thread, an email
        chain), starting a thread for ``agent`` if the conversation has none yet."""
        ...

    def respond(
        self,
        thread_id: str,
        request_id: str,
        responder: str,
        *,
        approved: bool | None = None,
        comment: str | None = None,
        answer: str | None = None,
        key: str | None = None,
        via: str | None = None,
        channel: str | None = None,
        digest: str | None = None,
        arguments: dict[str, Any] | None = None,
        standing: Standing | None = None,
    ) -> Submitted:
        """Answer a pending human request; raises ``Conflict``, ``NotAllowed``, ``LookupError``
        or ``ValueError`` (edited arguments the tool refuses, a scope its policy does not allow).

        ``via``: the approvers entry the channel found ``responder`` under (a user group it
        checked), recorded with the response so the fold can check it again. ``channel``: the
        door's name. ``digest``: the arguments the person was shown (``agent.approvals.digest``);
        ``arguments``: the ones they approve instead; ``standing``: a standing approval."""
        ...

    def load(self, thread_id: str) -> Thread: ...

    def arguments_schema(self, agent: str, tool: str) -> dict[str, Any] | None:
        """The JSON schema of ``tool``'s arguments in ``agent``, for a door that lets people
        edit them; None when the agent has no such tool."""
        ...

    def thread_of(self, route: str) -> str | None:
        """The thread a conversation maps to, if any."""
        ...


Receipt = Mapping[str, str]
"""What a channel needs to find a message it sent again (Slack channel + ts, a Message-ID)."""

ROUTE = "route"
"""A receipt key: the conversation the sent message starts or joins, known only once it is
sent (a new Slack thread's ts), which the runtime then maps to the thread so replies continue
it. A channel that knows its routes before sending binds them itself (``Receipts.bind_route``)."""


class Receipts(Protocol):
    def receipt(self, event_id: str) -> Receipt | None:
        """The receipt kept for an earlier event of the thread (to edit that message)."""
        ...

    def bind_route(self, route_key: str, thread_id: str) -> str:
        """Map a conversation to the thread now, before the message that starts it is sent,
        for a channel that knows the route in advance: a reply that comes back at once must
        find the thread. Returns the thread the route maps to."""
        ...


class Outbound(Protocol):
    """A channel's outbound side, for threads whose trigger came through it."""

    interests: frozenset[str]
    """The event types this channel shows to people (e.g. human_request, done)."""

    def deliver(self, thread: Thread, event: Event, receipts: Receipts) -> Receipt | None:
        """Show ``event`` to the people on ``thread``; return a receipt to keep, if any.

        Raise to have the delivery retried with backoff (an outage, a rate limit)."""
        ...
