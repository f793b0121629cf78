"""Answers from Slack: Approve/Reject clicks, the reject-reason modal, and replies to questions.

Each answer is checked first (is the request still pending? may this person answer,
directly or through a user group?) and then handed to the gateway. All decisions on
one request share one dedupe key, so a double click, or an Approve racing a Reject,
records a single response (invariant 3); the loser is told who answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from agent.approvals import Standing, call_digest, excluded
from agent.events import HumanRequest
from agent.thread import Thread
from channels.gateway import Conflict, Gateway, NotAllowed, Submitted
from channels.slack import CHANNEL
from channels.slack.approvers import Approvers, MembershipUnknown, NotAnApprover
from channels.slack.blocks import RequestRef, mention
from channels.slack.editor import edit_modal

log = structlog.get_logger(__name__)


class Refused(Exception):
    """The click or modal changes nothing; the message says why, written for the person."""


def decision_key(ref: RequestRef, user: str, approved: bool) -> str:
    """One key for every decision that settles a request, so a double click or an Approve
    racing a Reject records one; an approval towards a quorum is keyed per approver and per
    arguments shown, so each approver counts once and an approval of changed arguments is new."""
    if not approved:
        return f"slack:decision:{ref.thread}:{ref.request}"
    return f"slack:decision:{ref.thread}:{ref.request}:{user}:{ref.digest or ''}"


def _may_approve(thread: Thread, request: HumanRequest, ref: RequestRef, user: str) -> None:
    """Refuse an approval of arguments other than those the message showed, by someone who
    asked for the call, or by an approver counted already."""
    call = request.call
    if call is not None and ref.digest is not None and ref.digest != call_digest(call):
        raise Refused(
            f"The arguments of `{call.tool}` changed since this message showed them (an approver edited "
            "them). Nothing was changed: look at the updated request and decide on what it shows now."
        )
    if excluded(request, user):
        raise Refused(
            "Sorry, you asked for this (you started the thread or wrote the message that led to it), so "
            "someone else must approve it: separation of duties. Nothing was changed."
        )
    if user in thread.approvals:
        waiting = request.quorum - len(thread.approvals)
        raise Refused(f"You approved this already; it waits for {waiting} more approver(s).")


@dataclass(frozen=True)
class Checked:
    """A request a person may answer now, and the group (if any) they answer it through."""

    thread: Thread
    request: HumanRequest
    via: str | None


class Answers:
    def __init__(self, gateway: Gateway, approvers: Approvers) -> None:
        self.gateway = gateway
        self.approvers = approvers

    def check(self, ref: RequestRef, user: str, *, approving: bool = False) -> Checked:
        """The pending request and the group (if any) through which ``user`` may answer it.

        Raises ``Refused`` when the request is gone, settled, or not theirs to answer; when
        ``approving``, also when its arguments changed since ``ref`` showed them, or when
        ``user`` asked for the call themself (separation of duties)."""
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
            via = self.approvers.via(request.approvers, user)
        except NotAnApprover as exc:
            raise Refused(f"Sorry, {exc}. Nothing was changed.") from None
        except MembershipUnknown as exc:
            raise Refused(f"Sorry, I {exc}. Nothing was changed; please try again in a minute.") from None
        if approving:
            _may_approve(thread, request, ref, user)
        return Checked(thread, request, via)

    def decide(
        self,
        ref: RequestRef,
        user: str,
        *,
        approved: bool,
        comment: str | None = None,
        arguments: dict[str, Any] | None = None,
        standing: Standing | None = None,
    ) -> Submitted:
        """Record an approval or rejection by ``user``, bound to the arguments ``ref`` showed;
        raises ``Refused``, or ``ValueError`` for ``arguments`` or ``standing`` the tool refuses."""
        via = self.check(ref, user, approving=approved).via
        try:
            submitted = self.gateway.respond(
                ref.thread,
                ref.request,
                user,
                approved=approved,
                comment=comment or None,
                key=decision_key(ref, user, approved),
                via=via,
                channel=CHANNEL,
                digest=ref.digest,
                arguments=arguments,
                standing=standing,
            )
        except (Conflict, NotAllowed, LookupError) as exc:
            log.info("slack.decision_refused", thread_id=ref.thread, user=user, reason=str(exc))
            self.check(ref, user, approving=approved)  # says who answered first, or why not
            raise Refused(f"Nothing was changed: {exc}.") from exc
        if not submitted.applied:  # an identical decision raced this one and won
            self.check(ref, user)
            raise Refused("This request was already answered.")
        log.info("slack.decided", thread_id=ref.thread, user=user, approved=approved, via=via)
        return submitted

    def editor(self, ref: RequestRef, user: str) -> dict[str, Any]:
        """The Edit modal for the request ``ref`` names, if ``user`` may approve it; raises ``Refused``."""
        checked = self.check(ref, user, approving=True)
        call = checked.request.call
        schema = self.gateway.arguments_schema(checked.thread.agent, call.tool) if call is not None else None
        if schema is None:
            raise Refused("The arguments of this call cannot be edited here; approve or reject it as it is.")
        return edit_modal(RequestRef.of(ref.thread, checked.request), checked.request, schema)

    def schema(self, ref: RequestRef) -> dict[str, Any]:
        """The JSON schema of the arguments of the call ``ref``'s request approves."""
        thread = self.gateway.load(ref.thread)
        request = thread.request(ref.request)
        call = request.call if request is not None else None
        schema = self.gateway.arguments_schema(thread.agent, call.tool) if call is not None else None
        if schema is None:
            raise Refused("This request no longer has arguments to edit.")
        return schema

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
