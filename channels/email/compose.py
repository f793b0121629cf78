"""An event to show -> a mail in the thread's email conversation.

Threading: a mail's In-Reply-To is the latest message of the conversation the thread
knows (the mails people sent in, and the mails sent out, found by their receipts), and
its References the chain of them, so every client files it under the same conversation;
the subject stays "Re: <first subject>" because Gmail also threads by subject. A thread
started by a schedule has no mail to answer: its first mail starts the conversation.
A request mail (and a reminder or an escalation of it) says how to answer, and its Reply-To
carries a token for the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from agent.events import AgentMessage, Done, Event, Failed, HumanRequest, Origin, RequestExpired, Trigger
from agent.thread import Thread
from channels.email import CHANNEL
from channels.email.addresses import domain_of, tagged, trimmed
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
class Composed:
    message: EmailMessage
    message_id: str
    recipients: tuple[str, ...]


def compose(thread: Thread, event: Event, receipts: Receipts, letterhead: Letterhead) -> Composed | None:
    """The mail showing ``event`` to the thread's people; None when there is nothing to send."""
    origins = [e.origin for e in thread.events if isinstance(e, Trigger) and e.origin.channel == CHANNEL]
    ask = _asking(thread, event)
    body = _request_body(*ask) if ask else _body(event)
    to = _unique(a for o in origins for a in o.address.get("to", "").split(","))
    if body is None or not to:
        return None
    inbox = origins[0].address.get("inbox") or letterhead.inbox
    cc = [a for a in _unique(ask[1] if ask else ()) if "@" in a and a not in to]
    message_id = make_msgid(domain=domain_of(inbox)).strip("<>")
    reply_to = inbox
    if ask:
        token = new_token(ask[0].request_id)
        reply_to = tagged(inbox, token)
        message_id = request_message_id(token, domain_of(inbox))
    chain = _conversation(thread, event, receipts)
    message = EmailMessage()
    message["From"] = letterhead.sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Reply-To"] = reply_to
    message["Subject"] = _subject(thread, origins[0], replying=bool(chain))
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<{message_id}>"
    if chain:
        message["In-Reply-To"] = f"<{chain[-1]}>"
        message["References"] = " ".join(f"<{i}>" for i in trimmed(chain, REFERENCES_SENT))
    # RFC 3834: other robots (vacation replies, another Outerloop) must not answer this mail.
    message["Auto-Submitted"] = "auto-replied" if chain else "auto-generated"
    message["X-Outerloop-Thread"] = thread.id
    message.set_content(f"{body}\n\n-- \nOuterloop, thread {thread.id}\n")
    return Composed(message=message, message_id=message_id, recipients=(*to, *cc))


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


def _request_body(request: HumanRequest, approvers: tuple[str, ...], opening: str) -> str:
    who = (
        f"Only a reply from {', '.join(approvers)} counts."
        if approvers
        else "Only a reply from an allowed sender counts."
    )
    if request.kind == "question":
        how = "To answer, reply to this mail; what you write above the quoted text is your answer."
    else:
        how = (
            "To answer, reply to this mail with one of these as the first line:\n\n"
            "    approve\n"
            "    reject: <your reason>\n"
        )
    return f"{opening}{request.text}\n\n{how}\n{who} Keep the reply address: it is how this request is found."


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
