"""Mail with mutated headers and parts, fed over SMTP to the real inbox (aiosmtpd on loopback):
every mail is stored or refused with an SMTP code, the inbox never logs an error or a traceback,
keeps answering, and a refused mail stores nothing."""

from __future__ import annotations

import smtplib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime import Runtime
from tests.email_channel.conftest import inbox  # noqa: F401  (the inbox on loopback, for this env)
from tests.hostile.conftest import LogWatch
from tests.hostile.mutations import header_values
from tests.services import free_port

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
INBOX = "outerloop@example.com"
SENDER = "alice@example.com"
BOUNDARY = "b0undary"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {
        **env,
        "SMTP_LISTEN_PORT": str(free_port()),
        "SMTP_RECIPIENTS": INBOX,
        "SMTP_ALLOWED_SENDERS": "example.com",
        "SMTP_DATA_SIZE_LIMIT": str(64 * 1024),
    }


def header(name: str, usual: str) -> st.SearchStrategy[str]:
    """The header as a mail client writes it, mangled, or left out."""
    return st.one_of(
        st.just(f"{name}: {usual}\r\n"), header_values.map(lambda v: f"{name}: {v}\r\n"), st.just("")
    )


content_types = st.sampled_from(
    [
        "text/plain; charset=utf-8",
        "text/html; charset=iso-8859-1",
        "text/plain; charset=no-such-charset",
        "application/octet-stream",
        "message/rfc822",
        f'multipart/alternative; boundary="{BOUNDARY}"',
        "multipart/mixed",
        "",
    ]
)
encodings = st.sampled_from(["7bit", "base64", "quoted-printable", "8bit", "x-unknown", ""])
texts = st.text(max_size=200).map(lambda text: text.replace("\r", "").replace("\n", "\r\n"))


@st.composite
def parts(draw: st.DrawFn) -> str:
    kind, encoding, text = draw(content_types), draw(encodings), draw(texts)
    return f"Content-Type: {kind}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{text}\r\n"


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    heads = [
        draw(header("From", f"Alice <{SENDER}>")),
        draw(header("To", INBOX)),
        draw(header("Subject", "deploy the latest")),
        draw(header("Message-ID", "<m1@example.com>")),
        draw(header("In-Reply-To", "<earlier@example.com>")),
        draw(header("Auto-Submitted", "no")),
    ]
    body = draw(st.lists(parts(), max_size=3))
    if len(body) > 1 or draw(st.booleans()):
        framing = f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{BOUNDARY}"\r\n\r\n'
        text = framing + "".join(f"--{BOUNDARY}\r\n{part}" for part in body) + f"--{BOUNDARY}--\r\n"
    else:
        text = body[0] if body else "\r\nhello\r\n"
    return ("".join(heads) + text).encode("utf-8", "surrogateescape")


@pytest.mark.usefixtures("inbox")
@FUZZ
@given(raw=st.one_of(mails(), st.binary(max_size=500)), sender=st.sampled_from([SENDER, "bob@elsewhere.org"]))
def test_mangled_mail_is_stored_or_refused_and_never_breaks_the_inbox(
    runtime: Runtime, logs: LogWatch, raw: bytes, sender: str
) -> None:
    before = set(runtime.store.ids())
    with smtplib.SMTP("127.0.0.1", runtime.settings.smtp_listen_port, timeout=30) as client:
        try:
            client.sendmail(sender, [INBOX], raw)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused) as refusal:
            code = getattr(refusal, "smtp_code", 550)
            assert 400 <= code < 600
            assert set(runtime.store.ids()) == before, "a refused mail stores nothing"
        assert client.noop()[0] == 250, "the inbox still answers"
