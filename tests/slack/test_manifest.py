"""The Slack app manifest asks for what the channel uses, and points Slack at the right endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import channels.slack
from bot.doors.slack import EVENTS_PATH

MANIFEST = Path(channels.slack.__file__).parent / "manifest.json"


def test_the_manifest_subscribes_to_the_events_and_grants_the_scopes_the_channel_uses() -> None:
    manifest = json.loads(MANIFEST.read_text())
    settings = manifest["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert settings["interactivity"] == {
        "is_enabled": True,
        "request_url": settings["event_subscriptions"]["request_url"],
    }
    assert {"app_mention", "message.channels", "message.im"} <= set(
        settings["event_subscriptions"]["bot_events"]
    )
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # app_mention, message.channels/groups/im; chat.postMessage/update/postEphemeral; reactions; user groups.
    needed = {"app_mentions:read", "channels:history", "groups:history", "im:history", "chat:write"}
    assert needed | {"reactions:write", "usergroups:read"} <= scopes
    assert manifest["features"]["app_home"]["messages_tab_enabled"], "people can DM the bot"
