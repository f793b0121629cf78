"""A call a standing approval covers asks nobody by mail: the thread's people get a note instead."""

from __future__ import annotations

from agent.approvals import call_digest
from agent.events import Grant, HumanRequest, HumanResponse, Origin, ProposedCall, Trigger
from agent.thread import replay
from channels.email.compose import Letterhead, compose
from channels.gateway import Receipt
from tests.email_channel.conftest import INBOX

LETTERHEAD = Letterhead(sender=f"Outerloop <{INBOX}>", inbox=INBOX)


class NoReceipts:
    def receipt(self, event_id: str) -> Receipt | None:
        return None

    def bind_route(self, route_key: str, thread_id: str) -> str:
        return thread_id


def test_a_request_a_grant_approved_mails_the_thread_a_note_and_asks_no_approver() -> None:
    origin = Origin(channel="email", sender="rita@example.com", address={"to": "rita@example.com"})
    call = ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0"})
    request = HumanRequest(
        request_id="r1",
        kind="approval",
        text="Deploy?",
        call=call,
        approvers=("alice@example.com",),
        standing=True,
    )
    grant = Grant(scope="tool", agent="deploy", tool="deploy", thread="elsewhere", by="alice@example.com")
    response = HumanResponse(
        request_id="r1",
        responder="alice@example.com",
        approved=True,
        channel="grant",
        digest=call_digest(call),
        under=grant,
    )
    thread = replay("t1", "deploy", [Trigger(text="deploy", origin=origin), request, response])
    assert thread.response_to("r1") == response, "the grant approved the call"

    composed = compose(thread, request, NoReceipts(), LETTERHEAD)
    assert composed is not None
    [copy] = composed.copies
    assert copy.recipients == ("rita@example.com",), "no request goes to the approver"
    body = copy.message.get_content()
    assert grant.grant_id in body and "nobody was asked" in body and "alice@example.com" in body
    assert "reply to this mail" not in body

    unanswered = replay("t2", "deploy", [Trigger(text="deploy", origin=origin), request])
    asking = compose(unanswered, request, NoReceipts(), LETTERHEAD)
    assert asking is not None
    assert ("alice@example.com",) in [c.recipients for c in asking.copies], "without it the approver is asked"
