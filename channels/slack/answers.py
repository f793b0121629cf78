"""Answers from Slack: Approve/Reject clicks, the reject-reason modal, and replies to questions.

Each answer is checked first (is the request still pending? may this person answer,
directly or through a user group?) and then handed to the gateway. All decisions on
one request share one dedupe key, so a double click, or an Approve racing a Reject,
records a single response (invariant 3); the loser is told who answered.
"""

from __future__ import annotations

import structlog

from agent.events import HumanRequest
from channels.gateway import Conflict, Gateway, NotAllowed, Submitted
from channels.slack.approvers import Approvers, MembershipUnknown, NotAnApprover
from channels.slack.blocks import RequestRef, mention

log = structlog.get_logger(__name__)


class Refused(Exception):
    """The click or modal changes nothing; the message says why, written for the person."""


def decision_key(ref: RequestRef) -> str:
    return f"slack:decision:{ref.thread}:{ref.request}"


class Answers:
    def __init__(self, gateway: Gateway, approvers: Approvers) -> None:
        self.gateway = gateway
        self.approvers = approvers

    def check(self, ref: RequestRef, user: str) -> tuple[HumanRequest, str | None]:
        """The pending request and the group (if any) through which ``user`` may answer it.

        Raises ``Refused`` when the request is gone, settled, or not theirs to answer."""
        try:
            thread = self.gateway.load(ref.thread)
        except LookupError:
            raise Refused("This request no longer exists.") from None
        request = thread.request(ref.request)
        if request is None:
            raise Refused("This request no longer exists.")
        settled = thread.response_to(ref.request)
        if settled is not None:
            raise Refused(f"This request was already answered by {mention(settled.responder)}.")
        if thread.pending is None or thread.pending.request_id != ref.request:
            raise Refused(f"This request is no longer pending (the thread is {thread.status.value}).")
        try:
            return request, self.approvers.via(request.approvers, user)
        except NotAnApprover as exc:
            raise Refused(f"Sorry, {exc}. Nothing was changed.") from None
        except MembershipUnknown as exc:
            raise Refused(f"Sorry, I {exc}. Nothing was changed; please try again in a minute.") from None

    def decide(self, ref: RequestRef, user: str, *, approved: bool, comment: str | None = None) -> Submitted:
        """Record an approval or rejection by ``user``; raises ``Refused``."""
        _, via = self.check(ref, user)
        try:
            submitted = self.gateway.respond(
                ref.thread,
                ref.request,
                user,
                approved=approved,
                comment=comment or None,
                key=decision_key(ref),
                via=via,
            )
        except (Conflict, NotAllowed, LookupError) as exc:
            log.info("slack.decision_refused", thread_id=ref.thread, user=user, reason=str(exc))
            self.check(ref, user)  # says who answered first, or why not
            raise Refused("This request can no longer be answered.") from exc
        if not submitted.applied:  # an identical decision raced this one and won
            self.check(ref, user)
            raise Refused("This request was already answered.")
        log.info("slack.decided", thread_id=ref.thread, user=user, approved=approved, via=via)
        return submitted

    def reply(self, thread_id: str, user: str, text: str, key: str) -> Submitted | None:
        """The answer to the thread's pending question, if ``user`` may give it; else None."""
        pending = self.gateway.load(thread_id).pending
        if pending is None or pending.kind != "question":
            return None
        try:
            via = self.approvers.via(pending.approvers, user)
            return self.gateway.respond(thread_id, pending.request_id, user, answer=text, key=key, via=via)
        except (NotAnApprover, MembershipUnknown, Conflict, NotAllowed) as exc:
            log.info("slack.reply_is_not_an_answer", thread_id=thread_id, user=user, reason=str(exc))
            return None
