"""The outbound side of each configured channel, keyed by the channel name in a trigger's origin."""

from __future__ import annotations

from email.utils import parseaddr

from bot.settings import Settings
from bot.slack import slack_config
from channels.email import CHANNEL as EMAIL
from channels.email.compose import Letterhead
from channels.email.outbound import EmailOutbound, RelayConfig
from channels.gateway import Outbound
from channels.slack import CHANNEL as SLACK
from channels.slack.outbound import SlackOutbound


def outbound_channels(settings: Settings) -> dict[str, Outbound]:
    """Channels whose credentials are configured; API and CLI threads are read, not pushed."""
    channels: dict[str, Outbound] = {}
    if settings.smtp_host:
        channels[EMAIL] = email_outbound(settings)
    slack = slack_config(settings)
    if slack is not None:
        channels[SLACK] = SlackOutbound(slack.client())
    return channels


def email_outbound(settings: Settings) -> EmailOutbound:
    assert settings.smtp_host, "only called when SMTP_HOST is set"
    relay = RelayConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
    )
    sender = settings.email_sender
    inbox = next(iter(settings.smtp_recipients), parseaddr(sender)[1])
    return EmailOutbound(relay, Letterhead(sender=sender, inbox=inbox))
