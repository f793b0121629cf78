"""Email fixtures: the runtime configured for mail, a capturing relay, and the inbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.doors.smtp import inbox_server
from bot.runtime import Runtime
from channels.email.server import InboxServer
from tests.email_channel.servers import Relay
from tests.services import free_port

INBOX = "outerloop@example.com"
ALICE = "alice@example.com"
"""The deploy agent's approver."""
RITA = "rita@example.com"
"""Someone who asks for a deploy, which separation of duties keeps them from approving."""
SIZE_LIMIT = 64 * 1024


@pytest.fixture
def relay() -> Iterator[Relay]:
    relay = Relay()
    controller = relay.controller()
    controller.start()
    yield relay
    controller.stop()


@pytest.fixture
def env(env: dict[str, str], relay: Relay) -> dict[str, str]:
    """The suite's environment plus an inbox, its allowed senders, and the relay for replies."""
    return {
        **env,
        "SMTP_LISTEN_PORT": str(free_port()),
        "SMTP_RECIPIENTS": f"{INBOX},notes@example.com=notes",
        "SMTP_ALLOWED_SENDERS": "example.com,partner@elsewhere.org",
        "SMTP_DATA_SIZE_LIMIT": str(SIZE_LIMIT),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(relay.port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": f"Outerloop <{INBOX}>",
        "OUTERLOOP_APPROVERS": ALICE,
    }


@pytest.fixture
def inbox(runtime: Runtime) -> Iterator[InboxServer]:
    server = inbox_server(runtime)
    server.start()
    yield server
    server.stop()
