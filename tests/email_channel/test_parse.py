"""Reading mail: a corpus of real-world-shaped messages, and the pieces that read them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent.events import HumanRequest
from channels.email.addresses import Allowlist, split_tag, tagged, trimmed
from channels.email.htmltext import html_to_text
from channels.email.parse import MalformedMail, decode, parse_mail
from channels.email.quotes import strip_reply
from channels.email.replies import Answer, UnreadableAnswer, read_answer
from tests.services import REPO

CORPUS = REPO / "tests" / "email_corpus"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())


def test_every_corpus_message_has_an_expectation() -> None:
    assert sorted(path.name for path in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_messages_read_as_expected(name: str) -> None:
    expected = EXPECTED[name]
    raw = (CORPUS / name).read_bytes()
    if "malformed" in expected:
        with pytest.raises(MalformedMail, match=re.escape(expected["malformed"])):
            parse_mail(raw)
        return
    mail = parse_mail(raw)
    assert mail.author == expected["author"]
    assert mail.subject == expected["subject"]
    assert mail.text == expected["text"]
    assert list(mail.attachments) == expected.get("attachments", [])
    if "message_id" in expected:
        assert mail.message_id == expected["message_id"]
    for header in ("in_reply_to", "references"):
        if header in expected:
            assert list(getattr(mail, header)) == expected[header]


def test_a_mail_without_a_message_id_is_identified_by_its_content() -> None:
    raw = (CORPUS / "latin1_raw_header_no_message_id.eml").read_bytes()
    assert parse_mail(raw).identity == parse_mail(raw).identity != parse_mail(raw + b"\r\n").identity


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage without headers",
        b"From: <>\r\n\r\nhello",
        b"From: not an address\r\nSubject: hi\r\n\r\nhello",
        b"Subject: =?utf-8?q?broken\r\nFrom: \xff\xfe@\r\n\r\n",
    ],
    ids=["empty", "binary", "null sender", "no address", "broken encoded word"],
)
def test_unreadable_mail_is_a_clear_error_not_a_crash(raw: bytes) -> None:
    with pytest.raises(MalformedMail, match=r"From: address|could not be parsed"):
        parse_mail(raw)


def test_auto_replies_are_recognized() -> None:
    raw = b"From: alice@example.com\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\naway"
    assert parse_mail(raw).auto_submitted
    assert not parse_mail(raw.replace(b"auto-replied", b"no")).auto_submitted


@pytest.mark.parametrize(
    ("payload", "charset", "text"),
    [
        ("caf\u00e9".encode(), "utf-8", "caf\u00e9"),
        ("caf\u00e9".encode("latin-1"), "utf-8", "caf\u00e9"),  # the declared charset lies
        ("\u201cquoted\u201d".encode("cp1252"), "iso-8859-1", "\u201cquoted\u201d"),
        ("caf\u00e9".encode(), "us-ascii", "caf\u00e9"),
        ("caf\u00e9".encode(), "x-no-such-charset", "caf\u00e9"),
        ("\u65e5\u672c".encode("shift_jis"), "shift_jis", "\u65e5\u672c"),
        (b"\x81\x8d", None, "\ufffd\ufffd"),
    ],
)
def test_text_is_decoded_whatever_charset_is_declared(payload: bytes, charset: str | None, text: str) -> None:
    assert decode(payload, charset) == text


def test_quoted_text_after_the_answer_is_dropped_and_interleaved_answers_kept() -> None:
    top_posted = "approve\n\nOn Mon, 3 Jun 2024 at 10:12, Outerloop <\nbot@example.com> wrote:\n> Approve?\n"
    assert strip_reply(top_posted) == "approve"
    interleaved = "On Mon, 3 Jun 2024, Outerloop wrote:\n> Which tag?\nv1.2.0\n> Where?\nstaging\n"
    assert strip_reply(interleaved) == "v1.2.0\nstaging"
    prose = "On Monday we deploy v1.2.0, as Bob wrote."
    assert strip_reply(prose) == prose


def test_outlook_header_blocks_and_signatures_end_the_new_text() -> None:
    outlook = "Yes\n\n________________________________\nFrom: Outerloop\nSent: Monday\nTo: Bob\n\nold"
    assert strip_reply(outlook) == "Yes"
    assert strip_reply("reject: not now\n-----Original Message-----\nFrom: x") == "reject: not now"
    assert strip_reply("go\n-- \nAlice\n") == "go"
    assert strip_reply("go\n\nGet Outlook for iOS\n") == "go"


def test_html_is_read_as_text_with_quotes_marked() -> None:
    html = "<p>Ship <i>it</i></p><blockquote>old<br>older</blockquote><style>x{}</style><div>end</div>"
    assert html_to_text(html) == "Ship it\n\n> old\n> older\n\nend"


def test_allowlists_take_addresses_and_domains() -> None:
    allowed = Allowlist.of(["Alice@Example.com", "partner.org", "@ops.example.net", " "])
    assert allowed.allows("alice@example.com") and allowed.allows("ALICE@EXAMPLE.COM")
    assert allowed.allows("anyone@partner.org") and allowed.allows("x@ops.example.net")
    assert not allowed.allows("bob@example.com") and not allowed.allows("x@sub.partner.org")
    assert not allowed.allows("partner.org")
    assert not Allowlist.of([]).allows("alice@example.com")


def test_plus_tags_and_reference_chains() -> None:
    assert split_tag("Bot+Token@Example.com") == ("bot@example.com", "token")
    assert split_tag("bot@example.com") == ("bot@example.com", None)
    assert tagged("bot@example.com", "abc") == "bot+abc@example.com"
    assert trimmed(["a", "b", "c", "d"], 3) == ["a", "c", "d"]


def approval() -> HumanRequest:
    return HumanRequest(request_id="r" * 32, kind="approval", text="Approve?")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("approve", Answer(approved=True)),
        ("Approved!\nthanks", Answer(approved=True, comment="thanks")),
        ("reject: not during the freeze", Answer(approved=False, comment="not during the freeze")),
        ("Reject\nmigration\nnot reviewed", Answer(approved=False, comment="migration\nnot reviewed")),
        ("reject", Answer(approved=False)),
    ],
)
def test_approval_answers_are_read_from_the_first_line(text: str, answer: Answer) -> None:
    assert read_answer(approval(), text) == answer


@pytest.mark.parametrize("text", ["", "yes please", "I approve of this", "rejection letters"])
def test_anything_else_is_no_answer_to_an_approval(text: str) -> None:
    with pytest.raises(UnreadableAnswer, match='"approve" or "reject: <reason>"'):
        read_answer(approval(), text)


def test_a_question_takes_any_text_but_not_none() -> None:
    question = HumanRequest(request_id="q" * 32, kind="question", text="Which tag?")
    assert read_answer(question, " v1.2.0 \n") == Answer(answer="v1.2.0")
    with pytest.raises(UnreadableAnswer, match="empty"):
        read_answer(question, "  ")
