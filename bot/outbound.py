"""The outbound side of each configured channel, keyed by the channel name in a trigger's origin."""

from __future__ import annotations

from bot.settings import Settings
from channels.gateway import Outbound


def outbound_channels(settings: Settings) -> dict[str, Outbound]:
    """Channels whose credentials are configured; API and CLI threads are read, not pushed."""
    channels: dict[str, Outbound] = {}
    return channels
