"""The outbound side of each configured channel, keyed by the channel name in a trigger's origin."""

from __future__ import annotations

from email.utils import parseaddr

from bot.settings import Settings
from channels.email import CHANNEL as EMAIL
from channels.email.compose import Letterhead
from channels.email.maildir import MaildirOutbound
from channels.email.outbound import EmailOutbound, RelayConfig
from channels.gateway import Outbound
from channels.slack import CHANNEL as SLACK
from channels.slack.config import SlackConfig
from channels.slack.outbound import SlackOutbound


def outbound_channels(settings: Settings) -> dict[str, Outbound]:
    """Channels whose credentials are configured; API and CLI threads are read, not pushed."""
    channels: dict[str, Outbound] = {}
    if settings.smtp_host:
        channels[EMAIL] = email_outbound(settings)
    elif settings.smtp_maildir:
        channels[EMAIL] = MaildirOutbound(settings.smtp_maildir, _letterhead(settings))
    slack = slack_config(settings)
    if slack is not None:
        channels[SLACK] = SlackOutbound(slack.client())
    return channels


def slack_config(settings: Settings) -> SlackConfig | None:
    """The Slack channel's config, or None when ``SLACK_BOT_TOKEN`` is unset (no Slack)."""
    if not settings.slack_bot_token:
        return None
    return SlackConfig(
        bot_token=settings.slack_bot_token,
        signing_secret=settings.slack_signing_secret,
        app_token=settings.slack_app_token,
        api_url=settings.slack_api_url,
        agent=settings.slack_agent,
        channels=settings.slack_channels,
    )


def email_outbound(settings: Settings) -> EmailOutbound:
    assert settings.smtp_host, "only called when SMTP_HOST is set"
    relay = RelayConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
    )
    return EmailOutbound(relay, _letterhead(settings))


def _letterhead(settings: Settings) -> Letterhead:
    sender = settings.email_sender
    return Letterhead(sender=sender, inbox=next(iter(settings.smtp_recipients), parseaddr(sender)[1]))
