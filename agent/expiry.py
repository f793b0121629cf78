"""Time limits on human requests: when one is due, and what its expiry turns into.

Pure functions of a request and a time. The loop stamps a request's deadline when it
makes the request (``deadline``); the scheduler's sweep asks ``is_due`` and records
the ``RequestExpired`` that ``expire`` returns; ``reduce`` folds that event.
"""

from __future__ import annotations

from datetime import datetime

from agent.events import Expiry, ExpiryOutcome, HumanRequest, RequestExpired


def deadline(expiry: Expiry | None, now: datetime) -> datetime | None:
    """When a request made ``now`` under ``expiry`` expires; None when it never does."""
    return now + expiry.wait if expiry is not None else None


def is_due(request: HumanRequest, now: datetime) -> bool:
    return request.expires_at is not None and request.expires_at <= now


def expire(request: HumanRequest, now: datetime) -> RequestExpired:
    """The expiry of ``request`` at ``now``: remind, escalate, or time out, per its ``Expiry``.

    Stages, counted by ``request.stage``: first ``reminders`` reminders to the same
    approvers, then one escalation to ``escalate_to`` if set, then a time-out.
    """
    if request.expires_at is None:
        raise ValueError(f"request {request.request_id} has no deadline, so it cannot expire")
    missed = request.expires_at
    plan = request.expiry

    def expired(outcome: ExpiryOutcome, approvers: tuple[str, ...] = ()) -> RequestExpired:
        again = now + plan.wait if plan is not None and outcome != "timed_out" else None
        return RequestExpired(
            at=now,
            request_id=request.request_id,
            deadline=missed,
            outcome=outcome,
            approvers=approvers,
            expires_at=again,
        )

    if plan is not None and request.stage < plan.reminders:
        return expired("reminded", request.approvers)
    if plan is not None and request.stage == plan.reminders and plan.escalate_to:
        return expired("escalated", plan.escalate_to)
    return expired("timed_out")
