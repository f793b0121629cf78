"""A sign-in link mailed through the configured outbound relay (aiosmtpd on loopback)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.conftest import ALICE
from tests.console.helpers import csrf_of, post_form
from tests.email_channel import conftest as mail_fixtures
from tests.email_channel.servers import Relay

relay = mail_fixtures.relay
"""The capturing outbound relay of the email tests, as this module's fixture."""


@pytest.fixture
def env(env: dict[str, str], relay: Relay) -> dict[str, str]:
    return {
        **env,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(relay.port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": "Outerloop <outerloop@example.com>",
        "OUTERLOOP_CONSOLE_EMAILS": "@ops.example.com",
    }


def test_an_approver_gets_a_link_by_mail_that_signs_them_in(anonymous: httpx.Client, relay: Relay) -> None:
    sent = post_form(anonymous, "/console/signin", "/console/signin/email", email="Alice@Example.com")
    assert sent.status_code == 200 and "a sign-in link is on its way" in sent.text
    [mail] = relay.wait(1)
    assert mail.recipients == [ALICE]
    link = re.search(r"http://\S+", mail.text())
    assert link is not None
    page = anonymous.get(link.group(0))
    token = link.group(0).partition("token=")[2]
    assert (
        anonymous.post("/console/signin/link", data={"csrf": csrf_of(page), "token": token}).status_code
        == 303
    )
    assert f'data-testid="person">{ALICE}<' in anonymous.get("/console/inbox").text


def test_a_listed_domain_gets_a_link_and_a_stranger_gets_the_same_page_and_no_mail(
    anonymous: httpx.Client, relay: Relay
) -> None:
    stranger = post_form(anonymous, "/console/signin", "/console/signin/email", email="eve@evil.example")
    assert stranger.status_code == 200 and "a sign-in link is on its way" in stranger.text
    post_form(anonymous, "/console/signin", "/console/signin/email", email="carol@ops.example.com")
    [mail] = relay.wait(1)
    assert mail.recipients == ["carol@ops.example.com"]
    assert len(relay.mails) == 1
