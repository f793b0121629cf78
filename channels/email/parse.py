"""Raw mail bytes -> ``InboundMail``: who wrote, what is new in it, and what it replies to.

The stdlib ``email`` package (``policy=default``) does the MIME work; this module picks
the text (plain preferred, HTML converted), decodes it whatever the declared charset,
strips quotes and signatures, and turns every failure into ``MalformedMail`` with a
reason a sender can act on, so the SMTP handler never sees an exception from parsing.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass
from email import errors, policy
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.parser import BytesParser

from channels.email.addresses import message_ids, normalize
from channels.email.htmltext import html_to_text
from channels.email.quotes import strip_reply

_FORWARD = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.IGNORECASE)
"""Subjects of forwarded mail, whose quoted part is the point of the mail and is kept."""
_FALLBACK_CHARSETS = ("utf-8", "windows-1252")
_FATAL_DEFECTS = (
    errors.StartBoundaryNotFoundDefect,
    errors.InvalidBase64LengthDefect,
    errors.NoBoundaryInMultipartDefect,
)
"""Defects after which the body cannot be read; the stdlib survives milder ones itself."""


class MalformedMail(ValueError):
    """The mail cannot be read; the message says why, for the SMTP reply and the log."""


@dataclass(frozen=True)
class InboundMail:
    author: str
    """The From: address, normalized; whose request or answer this is."""
    subject: str
    text: str
    """What the author newly wrote: quotes, signature and device lines removed."""
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    reply_to: tuple[str, ...]
    """Where answers to this mail go: its Reply-To, else its author."""
    attachments: tuple[str, ...]
    """File names of attachments, which the inbox does not read."""
    auto_submitted: bool
    """An out-of-office reply, a bounce or another machine's mail (RFC 3834)."""
    fingerprint: str
    """SHA-256 of the raw bytes: the identity of a mail that lacks a Message-ID."""

    @property
    def identity(self) -> str:
        """A stable id for dedupe: the Message-ID, or the content's hash without one."""
        return self.message_id or f"sha256.{self.fingerprint}@outerloop.invalid"


def parse_mail(raw: bytes) -> InboundMail:
    """Parse one mail as received; raises ``MalformedMail`` when it cannot be read."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        if not isinstance(message, EmailMessage):  # policy.default always makes one
            raise MalformedMail("the mail could not be parsed")
        return _read(message, raw)
    except MalformedMail:
        raise
    except Exception as exc:  # any parser failure on outside input means a bad mail
        raise MalformedMail(f"the mail could not be parsed ({type(exc).__name__}: {exc})") from exc


def _read(message: EmailMessage, raw: bytes) -> InboundMail:
    author = _addresses(message, "from")
    if not author:
        raise MalformedMail("the mail has no valid From: address")
    subject = _header(message, "subject")
    reply_to = _addresses(message, "reply-to") or author
    text = _body_text(message)
    if not _FORWARD.match(subject):
        text = strip_reply(text)
    own_id = message_ids(str(message.get("message-id", "")))
    return InboundMail(
        author=author[0],
        subject=subject,
        text=text,
        message_id=own_id[0] if own_id else None,
        in_reply_to=message_ids(str(message.get("in-reply-to", ""))),
        references=message_ids(str(message.get("references", ""))),
        reply_to=reply_to,
        attachments=_attachments(message),
        auto_submitted=str(message.get("auto-submitted", "no")).strip().lower() not in ("", "no"),
        fingerprint=hashlib.sha256(raw).hexdigest(),
    )


def _header(message: EmailMessage, name: str) -> str:
    """A header's text. Raw 8-bit bytes (not RFC 2047 encoded, yet common) are decoded as
    UTF-8 or Windows-1252, where the parser alone would leave replacement characters."""
    raw = next((value for key, value in message.raw_items() if key.lower() == name), "")
    if re.search(r"[\udc80-\udcff]", raw):
        return " ".join(clean(raw).split())
    return " ".join(str(message.get(name, "")).split())


def _addresses(message: EmailMessage, name: str) -> tuple[str, ...]:
    header = message.get(name)
    if not isinstance(header, AddressHeader):
        return ()
    found = (clean(address.addr_spec) for address in header.addresses)
    return tuple(normalize(a) for a in found if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", a))


def _body_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    # Decoding first: the stdlib records transfer-encoding defects on the part as it decodes.
    payload = body.get_payload(decode=True) if isinstance(body, EmailMessage) else None
    fatal = [d for part in message.walk() for d in part.defects if isinstance(d, _FATAL_DEFECTS)]
    if fatal:
        raise MalformedMail(f"malformed MIME ({_describe(fatal[0])}): the mail cannot be read")
    if not isinstance(body, EmailMessage):
        return ""
    text = decode(payload if isinstance(payload, bytes) else b"", body.get_content_charset())
    text = html_to_text(text) if body.get_content_subtype() == "html" else text
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def _describe(defect: errors.MessageDefect) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(defect).__name__.removesuffix("Defect")).lower()
    return f"{words} ({defect})" if str(defect) else words


def _attachments(message: EmailMessage) -> tuple[str, ...]:
    names = []
    for part in message.walk():
        if isinstance(part, EmailMessage) and part.is_attachment():
            names.append(clean(part.get_filename() or part.get_content_type()))
    return tuple(names)


def decode(payload: bytes, charset: str | None) -> str:
    """Text in its declared charset; an unknown or lying charset falls back to UTF-8, then
    Windows-1252 (a superset of Latin-1 that decodes almost any byte), never failing."""
    try:
        name = codecs.lookup(charset or "us-ascii").name
    except LookupError:
        name = ""
    # As browsers do: "us-ascii" mail with 8-bit bytes is nearly always UTF-8, and
    # "iso-8859-1" mail is often Windows-1252 (curly quotes, euro sign) in disguise.
    declared = {"ascii": "", "iso8859-1": "windows-1252"}.get(name, name)
    for candidate in (declared, *_FALLBACK_CHARSETS):
        if candidate:
            try:
                return payload.decode(candidate)
            except UnicodeDecodeError:
                continue
    return payload.decode("utf-8", errors="replace")


def clean(text: str) -> str:
    """Header text with undecodable raw bytes (kept by the parser as surrogates) decoded."""
    if not re.search(r"[\udc80-\udcff]", text):
        return text
    return decode(text.encode("utf-8", errors="surrogateescape"), None)
