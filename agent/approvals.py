"""What an approval must be to count (invariant 6): pure rules that ``reduce`` and the doors share.

An approval binds one request and one digest of the call's arguments; it counts only from
someone the request allows who is not among its ``excluded`` (separation of duties), once
per person, until ``quorum`` distinct people approved. A standing approval (a ``Grant``)
counts for a later call only inside its scope, before its end, while it is not revoked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.events import Event, Grant, GrantScope, HumanRequest, ProposedCall, Trigger


@dataclass(frozen=True)
class Standing:
    """The standing scope an approver asks for along with their approval (see ``Grant``)."""

    scope: GrantScope
    hours: float | None = None
    """How long it lasts: required for ``tool``, optional for the others."""


def digest(tool: str, arguments: dict[str, Any]) -> str:
    """A short, stable fingerprint of a call: what an approval binds itself to."""
    canonical = json.dumps([tool, arguments], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def call_digest(call: ProposedCall) -> str:
    return digest(call.tool, call.arguments)


def same_person(a: str, b: str) -> bool:
    """People compare without case: email addresses arrive in any case, Slack ids never vary."""
    return a.casefold() == b.casefold()


def may_answer(request: HumanRequest, responder: str, via: str | None = None) -> bool:
    """Whether ``responder`` is allowed to answer ``request`` (invariant 7).

    ``via`` names the approvers entry a channel found the responder under (a group the
    channel checked their membership of); it counts only if the request lists it."""
    if not request.approvers or responder in request.approvers:
        return True
    return via is not None and via in request.approvers


def excluded(request: HumanRequest, responder: str) -> bool:
    """Whether ``responder`` asked for what ``request`` would approve, and so may not approve it."""
    return any(same_person(responder, person) for person in request.excluded)


def requesters(events: Iterable[Event]) -> tuple[str, ...]:
    """Who started the thread and who wrote its latest message: the people separation of
    duties keeps from approving the call that message led to."""
    triggers = [event for event in events if isinstance(event, Trigger)]
    if not triggers:
        return ()
    first, latest = triggers[0].origin.sender, triggers[-1].origin.sender
    return (first,) if same_person(first, latest) else (first, latest)


def grant_covers(grant: Grant, request: HumanRequest, agent: str, at: datetime) -> bool:
    """Whether ``grant`` may stand in for approving ``request``'s call at ``at`` in a thread of
    ``agent``: the policy allows standing approvals and needs one approver, the call is in the
    grant's scope, the grant has not ended, and its giver may approve this request."""
    call = request.call
    if call is None or not request.standing or request.quorum > 1:
        return False
    if grant.agent != agent or grant.tool != call.tool:
        return False
    if grant.scope == "call" and grant.digest != call_digest(call):
        return False
    if grant.until is not None and at > grant.until:
        return False
    return may_answer(request, grant.by, grant.via) and not excluded(request, grant.by)


def grant_fits(grant: Grant, call: ProposedCall, responder: str, via: str | None) -> str | None:
    """Why ``grant`` cannot be given with an approval of ``call`` by ``responder``, or None."""
    if grant.by != responder or grant.via != via:
        return "a standing approval is given by the approver themself"
    if grant.tool != call.tool:
        return f"the standing approval names tool {grant.tool!r}, not {call.tool!r}"
    if grant.scope == "call" and grant.digest != call_digest(call):
        return "a standing approval for exactly these arguments must carry their digest"
    if grant.scope == "tool" and grant.until is None:
        return "a standing approval for a tool needs an end (hours)"
    return None
