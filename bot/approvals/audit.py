"""The audit trail: every decision on a call — who, which call, its digest, edits, door, grant.

The decisions are events in their threads' logs; reading all threads to list them would
cost the whole store. So the append that records a decision also adds an entry for it to
the ``audit`` sorted set (``bot.state.store``), scored by when it was recorded and capped at the
latest ``KEPT`` entries: ``outerloop audit`` and ``GET /audit`` read a time range of it.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import redis
from pydantic import BaseModel

from agent.approvals import call_digest
from agent.events import Event, GrantRevoked, HumanResponse
from agent.thread import Thread

KEPT = 50_000
"""Audit entries kept; older ones drop off (the threads' logs still hold them)."""
KEY = "ol:audit"


class Decision(BaseModel):
    """One audit entry."""

    at: float
    thread: str
    agent: str
    decision: str
    """approved, rejected, answered (a question) or revoked (a grant)."""
    by: str
    request_id: str | None = None
    tool: str | None = None
    call_id: str | None = None
    digest: str | None = None
    """The digest of the arguments decided on (for an approval, as they were shown)."""
    arguments: dict[str, Any] | None = None
    """The arguments as the approver edited them, if they did."""
    channel: str | None = None
    credential: str | None = None
    via: str | None = None
    under: str | None = None
    """The standing approval this decision was made under."""
    gives: dict[str, Any] | None = None
    """The standing approval given with it: id, scope, until."""
    grant: str | None = None
    """For a revocation: the grant revoked."""
    counted: bool = True
    """False when the log kept it but it changed nothing (refused by the fold)."""


def entry(thread: Thread, event: Event) -> str | None:
    """The audit entry of ``event`` just folded into ``thread`` (as JSON), or None for events
    that decide nothing."""
    match event:
        case HumanResponse():
            decision = _response(thread, event)
        case GrantRevoked(grant_id=grant_id, by=by):
            decision = Decision(
                at=event.at.timestamp(),
                thread=thread.id,
                agent=thread.agent,
                decision="revoked",
                by=by,
                grant=grant_id,
            )
        case _:
            return None
    return decision.model_dump_json(exclude_none=True)


def _response(thread: Thread, response: HumanResponse) -> Decision:
    request = thread.events.first_request(response.request_id)
    call = request.call if request is not None else None
    verdict = {True: "approved", False: "rejected", None: "answered"}[response.approved]
    gives = response.gives
    return Decision(
        at=response.at.timestamp(),
        thread=thread.id,
        agent=thread.agent,
        decision=verdict,
        by=response.responder,
        request_id=response.request_id,
        tool=call.tool if call else None,
        call_id=call.call_id if call else None,
        digest=response.digest or (call_digest(call) if call else None),
        arguments=response.arguments,
        channel=response.channel,
        credential=response.credential,
        via=response.via,
        under=response.under.grant_id if response.under else None,
        gives=gives.model_dump(mode="json", include={"grant_id", "scope", "until"}) if gives else None,
        counted=thread.events.heeds_last(),
    )


def since(connection: redis.Redis, start: float, limit: int = 1000) -> list[Decision]:
    """The decisions recorded at or after ``start`` (a Unix time), oldest first, at most ``limit``."""
    raw = cast(list[bytes], connection.zrangebyscore(KEY, start, "+inf", start=0, num=limit))
    return [Decision.model_validate(json.loads(item)) for item in raw]


def parse_since(text: str, now: float | None = None) -> float:
    """A Unix time from ``7d``, ``12h``, ``30m`` (that long ago); raises ``ValueError``."""
    units = {"d": 86400, "h": 3600, "m": 60}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise ValueError(f"--since wants a number and a unit (d, h or m), such as 7d or 12h; not {text!r}")
    return (now if now is not None else time.time()) - int(number) * units[unit]
