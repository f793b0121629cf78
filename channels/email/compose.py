"""An event to show -> a mail in the thread's email conversation.

Threading: a mail's In-Reply-To is the latest message of the conversation the thread
knows (the mails people sent in, and the mails sent out, found by their receipts), and
its References the chain of them, so every client files it under the same conversation;
the subject stays "Re: <first subject>" because Gmail also threads by subject. A thread
started by a schedule has no mail to answer: its first mail starts the conversation.
A request (and a reminder or an escalation of it) is mailed to each person asked on their
own, with a Reply-To carrying a token bound to their address (see ``replies``); the
thread's other people get a notice of it without one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from agent.events import AgentMessage, Done, Event, Failed, HumanRequest, Origin, RequestExpired, Trigger
from agent.thread import Thread
from channels.email import CHANNEL
from channels.email.addresses import domain_of, is_address, normalize, tagged, trimmed
from channels.email.replies import new_token, request_message_id
from channels.gateway import Receipts

SHOWN = frozenset({"agent_message", "human_request", "request_expired", "done", "failed"})
"""The events people on an email thread get a mail for."""
REFERENCES_SENT = 20
SUBJECT_LENGTH = 78


@dataclass(frozen=True)
class Letterhead:
    sender: str
    """The From: of every mail (``Outerloop <bot@example.com>``); SPF/DKIM must cover it."""
    inbox: str
    """Where replies go when the thread's first mail came in elsewhere (or not by mail)."""


@dataclass(frozen=True)
class Copy:
    """One mail of a delivery, and whom it goes to."""

    message: EmailMessage
    message_id: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Composed:
    """The mails showing one event: one for the thread's people, or, for a request, one for
    each person asked (with a reply address of their own) and a notice for the others."""

    copies: tuple[Copy, ...]

    @property
    def message_id(self) -> str:
        """The mail the thread's people got, which later mails of the thread reply to."""
        return self.copies[0].message_id

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(r for copy in self.copies for r in copy.recipients)


@dataclass(frozen=True)
class _Draft:
    to: tuple[str, ...]
    reply_to: str
    message_id: str
    body: str


def compose(thread: Thread, event: Event, receipts: Receipts, letterhead: Letterhead) -> Composed | None:
    """The mails showing ``event`` to the thread's people; None when there is nothing to send."""
    origins = [e.origin for e in thread.events if isinstance(e, Trigger) and e.origin.channel == CHANNEL]
    people = _unique(normalize(a) for o in origins for a in o.address.get("to", "").split(","))
    if not people:
        return None
    inbox = origins[0].address.get("inbox") or letterhead.inbox
    standing = _under_grant(thread, event)
    ask = None if standing else _asking(thread, event)
    body = standing or (None if ask else _body(event))
    if ask:
        drafts = _request_drafts(*ask, people, inbox)
    elif body is not None:
        drafts = [_Draft(tuple(people), inbox, _new_message_id(inbox), body)]
    else:
        return None
    chain = _conversation(thread, event, receipts)
    subject = _subject(thread, origins[0], replying=bool(chain))
    return Composed(tuple(_copy(thread, draft, subject, chain, letterhead) for draft in drafts))


def _copy(thread: Thread, draft: _Draft, subject: str, chain: list[str], letterhead: Letterhead) -> Copy:
    message = EmailMessage()
    message["From"] = letterhead.sender
    message["To"] = ", ".join(draft.to)
    message["Reply-To"] = draft.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{draft.message_id}>"
    if chain:
        message["In-Reply-To"] = f"<{chain[-1]}>"
        message["References"] = " ".join(f"<{i}>" for i in trimmed(chain, REFERENCES_SENT))
    # RFC 3834: other robots (vacation replies, another Outerloop) must not answer this mail.
    message["Auto-Submitted"] = "auto-replied" if chain else "auto-generated"
    message["X-Outerloop-Thread"] = thread.id
    message.set_content(f"{draft.body}\n\n-- \nOuterloop, thread {thread.id}\n")
    return Copy(message=message, message_id=draft.message_id, recipients=draft.to)


def _body(event: Event) -> str | None:
    match event:
        case AgentMessage(text=text):
            return text
        case Done(message=message):
            return message
        case Failed(reason=reason):
            return f"I had to stop working on this: {reason}"
        case RequestExpired(outcome="timed_out"):
            return "Nobody answered in time, so the request is closed unanswered (nothing was approved)."
        case _:
            return None


def _under_grant(thread: Thread, event: Event) -> str | None:
    """For a request a standing approval answered already, a note to the thread's people
    instead of a request mail: nobody is asked for what nobody needs to decide."""
    if not isinstance(event, HumanRequest):
        return None
    settled = thread.response_to(event.request_id)
    grant = settled.under if settled is not None else None
    if grant is None or event.call is None:
        return None
    return (
        f"{event.text}\n\nApproved under the standing approval {grant.grant_id} that {grant.by} gave "
        f"({grant.scope} scope), so nobody was asked. Arguments: "
        f"{json.dumps(event.call.arguments, ensure_ascii=False, sort_keys=True)}"
    )


Asking = tuple[HumanRequest, tuple[str, ...], str]
"""A mail that asks people: the request, who is asked now, and a line to open with."""


def _asking(thread: Thread, event: Event) -> Asking | None:
    if isinstance(event, HumanRequest):
        return event, event.approvers, ""
    if not isinstance(event, RequestExpired) or event.outcome == "timed_out":
        return None
    asked = next(
        (e for e in thread.events if isinstance(e, HumanRequest) and e.request_id == event.request_id), None
    )
    if asked is None:
        return None
    if event.outcome == "reminded":
        return asked, event.approvers, "Reminder: this still waits for an answer.\n\n"
    return (
        asked,
        event.approvers,
        f"Nobody answered in time, so this now goes to {', '.join(event.approvers)}.\n\n",
    )


def _request_drafts(
    request: HumanRequest, approvers: tuple[str, ...], opening: str, people: list[str], inbox: str
) -> list[_Draft]:
    """A mail with a reply token of their own for each person asked now (approvers that are
    mail addresses; the thread's people when anyone may answer), and a notice without one
    for the thread's people who are not asked, so they cannot answer in anyone's name."""
    asked = _unique(normalize(a) for a in approvers if is_address(a)) if approvers else list(people)
    others = tuple(p for p in people if p not in asked)
    asked.sort(key=lambda address: address not in people)  # the thread's people first
    drafts = []
    if others:
        notice = _notice_body(request, approvers, opening)
        drafts.append(_Draft(others, inbox, _new_message_id(inbox), notice))
    for address in asked:
        token = new_token(request.request_id)
        message_id = request_message_id(token, address, domain_of(inbox))
        body = _request_body(request, approvers, opening, address)
        drafts.append(_Draft((address,), tagged(inbox, token), message_id, body))
    return drafts


def _request_body(request: HumanRequest, approvers: tuple[str, ...], opening: str, address: str) -> str:
    if request.kind == "question":
        how = "To answer, reply to this mail; what you write above the quoted text is your answer."
    else:
        how = (
            "To answer, reply to this mail with one of these as the first line:\n\n"
            "    approve\n"
            "    reject: <your reason>\n\n"
            "To change an argument before approving, put one line per change right under\n"
            "approve, such as:\n\n"
            "    approve\n"
            "    tag: v1.2.0\n"
        )
    asked = f"Asked: {', '.join(approvers)}. " if approvers else ""
    return (
        f"{opening}{request.text}\n\n{how}\n{asked}The reply address of this mail is yours alone: "
        f"it takes an answer only from {address}, sent from that mailbox. Keep it as it is."
    )


def _notice_body(request: HumanRequest, approvers: tuple[str, ...], opening: str) -> str:
    return (
        f"{opening}{request.text}\n\nThis waits for an answer from {', '.join(approvers)}, "
        "who are asked in a mail of their own. This mail is for your information: "
        "a reply to it does not answer the request."
    )


def _new_message_id(inbox: str) -> str:
    return make_msgid(domain=domain_of(inbox)).strip("<>")


def _conversation(thread: Thread, event: Event, receipts: Receipts) -> list[str]:
    """The Message-IDs of the conversation before ``event``, oldest first."""
    chain: list[str] = []
    for earlier in thread.events:
        if earlier.id == event.id:
            break
        if isinstance(earlier, Trigger) and earlier.origin.channel == CHANNEL:
            chain += earlier.origin.address.get("references", "").split()
            chain.append(earlier.origin.address.get("message_id", ""))
        elif earlier.type in SHOWN:
            chain.append((receipts.receipt(earlier.id) or {}).get("message_id", ""))
    return _unique(chain)


def _subject(thread: Thread, origin: Origin, replying: bool) -> str:
    subject = origin.address.get("subject", "").strip()
    if not subject:
        first_line = (thread.trigger.text if thread.trigger else "").strip().split("\n")[0]
        subject = first_line[:SUBJECT_LENGTH] or f"Outerloop: {thread.agent}"
    if replying and not subject.lower().startswith("re:"):
        return f"Re: {subject}"
    return subject


def _unique(items: Iterable[str]) -> list[str]:
    """Non-empty items, stripped, first occurrence kept."""
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))
