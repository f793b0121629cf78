"""Answers by email: reply tokens of one person each, and an answer mail -> ``Gateway.respond``.

Everyone asked to answer a request gets a mail of their own whose Reply-To is the inbox
plus-addressed with a token (``bot+TOKEN@example.com``): the first characters of the
request id, then 120 random bits. That mail's Message-ID is a one-way hash of the token
AND the address it went to, and the runtime maps that Message-ID to the thread (the
receipt's route). So a token finds its thread again only together with the address it
was issued to — nothing else is stored, and the Message-ID, which travels in every later
References header, gives neither away.

An answer counts only when the token's address, the ``From:`` address and the envelope
sender (MAIL FROM) are one and the same, and that address may answer the request now
(invariant 7); anything else is refused and changes nothing. Whoever saw someone else's
request mail (a forward, a shared mailbox) therefore cannot answer with it from their own
mailbox, and a requester who is not an approver never gets a token at all. Forging both
``From:`` and the envelope is left to SPF/DMARC at the MX in front of the inbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

import structlog

from agent.approvals import call_digest, may_answer
from agent.events import HumanRequest
from agent.thread import Thread
from channels.email import CHANNEL
from channels.email.addresses import domain_of, normalize, route, split_tag
from channels.email.parse import InboundMail
from channels.email.status import ACCEPTED, DUPLICATE, Refused
from channels.gateway import Conflict, Gateway, NotAllowed

log = structlog.get_logger(__name__)

REQUEST_PREFIX = 10
"""Characters of the request id a token starts with, to tell a thread's requests apart."""
_TOKEN = re.compile(rf"[0-9a-f]{{{REQUEST_PREFIX}}}[a-z2-7]{{24}}")
_APPROVE = re.compile(r"^(approve|approved)\s*[.!]?$", re.IGNORECASE)
_EDIT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")
_REJECT = re.compile(r"^(reject|rejected)\b\s*[:.,-]?\s*(.*)$", re.IGNORECASE | re.DOTALL)


def new_token(request_id: str) -> str:
    """A fresh, unguessable token for answering ``request_id`` (lowercase: mail systems may
    fold the case of addresses)."""
    secret = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return f"{request_id[:REQUEST_PREFIX]}{secret}"


def request_message_id(token: str, address: str, domain: str) -> str:
    """The Message-ID of the request mail to ``address`` whose reply address carries ``token``."""
    bound = f"{token} {normalize(address)}".encode()
    return f"{hashlib.sha256(bound).hexdigest()[:40]}.request@{domain}"


@dataclass(frozen=True)
class Answer:
    approved: bool | None = None
    comment: str | None = None
    answer: str | None = None
    edits: dict[str, Any] | None = None
    """Arguments changed by ``key: value`` lines right under ``approve``."""


class UnreadableAnswer(ValueError):
    """The reply says neither approve nor reject (or answers a question with nothing)."""


def read_answer(request: HumanRequest, text: str) -> Answer:
    """``approve`` / ``reject: reason`` on the first line for an approval; any text for a question."""
    text = text.strip()
    if request.kind == "question":
        if not text:
            raise UnreadableAnswer("the reply is empty: write your answer above the quoted mail")
        return Answer(answer=text)
    first, _, rest = text.partition("\n")
    if _APPROVE.match(first.strip()):
        edits, comment = _edits(rest)
        return Answer(approved=True, comment=comment, edits=edits)
    rejected = _REJECT.match(text)
    if rejected:
        return Answer(approved=False, comment=rejected.group(2).strip() or None)
    raise UnreadableAnswer('start the reply with "approve" or "reject: <reason>"; nothing changed')


def _edits(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The ``key: value`` lines at the top of ``text`` (a value is JSON, or else text), and the
    rest of it as a comment."""
    lines = text.strip().splitlines()
    edits: dict[str, Any] = {}
    while lines and (edit := _EDIT.match(lines[0])):
        try:
            edits[edit.group(1)] = json.loads(edit.group(2))
        except ValueError:
            edits[edit.group(1)] = edit.group(2).strip()
        lines.pop(0)
    return edits or None, "\n".join(lines).strip() or None


def answer_by_mail(gateway: Gateway, address: str, mail: InboundMail, sender: str) -> str:
    """Apply ``mail``, sent to the reply address ``address`` with the envelope sender
    ``sender``, as the answer to its request."""
    if normalize(sender) != mail.author:
        raise Refused(
            550,
            "5.7.1",
            f"the envelope sender <{normalize(sender)}> is not the From: address <{mail.author}>: "
            "answer from your own mailbox; nothing changed",
        )
    thread, request = _request_of(gateway, address, mail.author)
    key = route(mail.identity)
    if not _waiting(thread, request.request_id, key):
        return DUPLICATE  # this very mail answered it: a redelivery
    # Addresses compare case-insensitively; the kernel checks approvers as written.
    responder = next((a for a in request.approvers if normalize(a) == mail.author), mail.author)
    if not may_answer(request, responder):
        raise Refused(550, "5.7.1", f"{mail.author} may not answer this request; nothing changed")
    try:
        answer = read_answer(request, mail.text)
    except UnreadableAnswer as exc:
        raise Refused(550, "5.6.0", str(exc)) from exc
    # The mail showed the call as first asked: the answer binds those arguments.
    shown = thread.events.first_request(request.request_id)
    call = shown.call if shown is not None else None
    try:
        submitted = gateway.respond(
            thread.id,
            request.request_id,
            responder,
            approved=answer.approved,
            comment=answer.comment,
            answer=answer.answer,
            key=key,
            channel=CHANNEL,
            digest=call_digest(call) if call is not None else None,
            arguments={**call.arguments, **answer.edits} if call is not None and answer.edits else None,
        )
    except ValueError as exc:  # edited arguments the tool's model refuses
        if isinstance(exc, Conflict):
            if not _waiting(gateway.load(thread.id), request.request_id, key):
                return DUPLICATE
            raise Refused(550, "5.7.1", f"{exc}; nothing changed") from exc
        raise Refused(550, "5.6.0", f"{exc}; nothing changed") from exc
    except NotAllowed as exc:  # who may answer changed meanwhile
        if not _waiting(gateway.load(thread.id), request.request_id, key):
            return DUPLICATE
        raise Refused(550, "5.7.1", f"{exc}; nothing changed") from exc
    log.info(
        "email.answered",
        thread_id=thread.id,
        request_id=request.request_id,
        responder=responder,
        approved=answer.approved,
        duplicate=not submitted.applied,
    )
    return ACCEPTED if submitted.applied else DUPLICATE


def _waiting(thread: Thread, request_id: str, key: str) -> bool:
    """Whether the request still waits for an answer: False when the mail with ``key``
    answered it already (a redelivery); refused when anything else closed it."""
    settled = thread.response_to(request_id)
    if settled is not None and settled.key == key:
        return False
    if thread.pending is not None and thread.pending.request_id == request_id:
        return True
    closed = f"already answered by {settled.responder}" if settled else "no longer waiting for an answer"
    raise Refused(550, "5.7.1", f"the request was {closed}; nothing changed")


def _request_of(gateway: Gateway, address: str, author: str) -> tuple[Thread, HumanRequest]:
    """The thread and request a reply address was issued to ``author`` for; refused when it
    was not. (The reasons never repeat the address: its tag is a secret.)"""
    inbox, token = split_tag(address)
    unknown = Refused(550, "5.1.1", "the address is not the reply address of any request; nothing changed")
    if token is None or not _TOKEN.fullmatch(token):
        raise unknown
    thread_id = gateway.thread_of(route(request_message_id(token, author, domain_of(inbox))))
    if thread_id is None:  # a forged token, or someone else's: the two look alike on purpose
        raise Refused(
            550,
            "5.7.1",
            f"the address is not a reply address given to {author}: answer the request mail "
            "that was sent to you; nothing changed",
        )
    prefix = token[:REQUEST_PREFIX]
    thread = gateway.load(thread_id)
    ids = {
        e.request_id for e in thread.events if isinstance(e, HumanRequest) and e.request_id.startswith(prefix)
    }
    if len(ids) != 1:
        raise unknown
    # The request as it stands: a reminder or an escalation may have changed who may answer.
    request = thread.request(ids.pop())
    assert request is not None, "the id was just found among the thread's requests"
    return thread, request
