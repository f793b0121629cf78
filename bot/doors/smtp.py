"""``outerloop smtp``: the email inbox, wired to the runtime from settings."""

from __future__ import annotations

import signal
import threading
from email.utils import parseaddr

import structlog

from bot.runtime import Runtime
from bot.settings import Settings
from channels.email.addresses import Allowlist, normalize
from channels.email.inbound import Inbox, InboxConfig
from channels.email.server import InboxServer, ListenConfig

log = structlog.get_logger(__name__)


def inbox_config(settings: Settings) -> InboxConfig:
    return InboxConfig(
        recipients=settings.smtp_recipients,
        senders=Allowlist.of(settings.smtp_allowed_senders),
        own_addresses=frozenset({normalize(parseaddr(settings.email_sender)[1])}),
        require_auth=bool(settings.smtp_listen_username or settings.smtp_listen_password),
    )


def listen_config(settings: Settings) -> ListenConfig:
    return ListenConfig(
        host=settings.smtp_listen_host,
        port=settings.smtp_listen_port,
        data_size_limit=settings.smtp_data_size_limit,
        tls_cert=settings.smtp_tls_cert,
        tls_key=settings.smtp_tls_key,
        require_tls=settings.smtp_require_tls,
        username=settings.smtp_listen_username,
        password=settings.smtp_listen_password,
    )


def inbox_server(runtime: Runtime) -> InboxServer:
    settings = runtime.settings
    return InboxServer(Inbox(runtime, inbox_config(settings)), listen_config(settings))


def run(settings: Settings) -> None:
    """Serve the inbox until SIGTERM or SIGINT."""
    config = inbox_config(settings)
    runtime = Runtime.from_settings(settings)
    for agent in sorted(set(config.recipients.values())):
        runtime.agents.get(agent)  # an unknown agent fails here, not on every mail to it
    server = inbox_server(runtime)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    log.info(
        "smtp.listening",
        host=server.config.host,
        port=server.config.port,
        recipients=dict(config.recipients),
        senders=config.senders.describe(),
        starttls=server.config.tls_cert is not None,
        auth=server.config.username is not None,
    )
    if not config.senders.addresses and not config.senders.domains:
        log.warning("smtp.nobody_allowed", hint="set SMTP_ALLOWED_SENDERS, or every mail is refused")
    try:
        while not stop.wait(timeout=1.0):
            pass
    finally:
        server.stop()
        log.info("smtp.stopped")
