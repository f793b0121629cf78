"""Slack message events -> thread events.

A message counts when it mentions the bot, is a direct message, or replies in a
Slack thread that is already one of ours; everything else (other channel chatter,
edits and deletions, the bot's own posts, other bots) is ignored with a reason.
A Slack thread is one conversation: its route key names team, channel and the
thread's root ``ts``, so every reply in it lands on the same thread of events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from agent.events import Origin, Trigger
from channels.gateway import Gateway, Submitted
from channels.slack import CHANNEL
from channels.slack.answers import Answers
from channels.slack.blocks import unescape

log = structlog.get_logger(__name__)

KEPT_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
"""Message subtypes a person writes; the rest are edits, deletions, joins and the like."""
AGENT_PREFIX = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_-]*):\s*(\S.*)$", re.DOTALL)
"""``agent-name: request``, by which a message picks the agent of the conversation it opens."""


class Ignored(ValueError):
    """A Slack event that is not for the agent; the message says why."""


def route_key(team: str, channel: str, root_ts: str) -> str:
    """The conversation a Slack thread is, however it was started."""
    return f"{CHANNEL}:{team}:{channel}:{root_ts}"


@dataclass(frozen=True)
class Message:
    """A person's message, as the agent sees it."""

    team: str
    channel: str
    user: str
    text: str
    ts: str
    thread_ts: str | None
    direct: bool
    """Sent in a direct message with the bot."""
    mentioned: bool
    """Mentions the bot."""

    @property
    def root(self) -> str:
        """The ``ts`` of the Slack thread's first message: where replies go."""
        return self.thread_ts or self.ts

    @property
    def route(self) -> str:
        return route_key(self.team, self.channel, self.root)

    @property
    def key(self) -> str:
        """One message, however many events carry it: Slack retries the same ``event_id``, and
        a mention in a channel also arrives as a ``message`` event with an ``event_id`` of its own."""
        return f"{CHANNEL}:{self.team}:{self.channel}:{self.ts}"

    def trigger(self) -> Trigger:
        address = {"team": self.team, "channel": self.channel, "thread_ts": self.root, "ts": self.ts}
        origin = Origin(channel=CHANNEL, sender=self.user, address=address)
        return Trigger(text=self.text, origin=origin, key=self.key)


def read_message(body: Mapping[str, Any], bot_user_id: str | None) -> Message:
    """The message an ``app_mention`` or ``message`` event carries; raises ``Ignored``."""
    event = body.get("event") or {}
    if event.get("type") not in ("app_mention", "message"):
        raise Ignored(f"not a message event: {event.get('type')!r}")
    if event.get("subtype") not in KEPT_SUBTYPES:
        raise Ignored(f"message subtype {event.get('subtype')!r}")
    if event.get("bot_id") or event.get("bot_profile"):
        raise Ignored("written by a bot")
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    team = body.get("team_id") or event.get("team")
    if not (user and channel and ts and team):
        raise Ignored("missing user, channel, ts or team")
    if user == bot_user_id:
        raise Ignored("the bot's own message")
    raw = str(event.get("text") or "")
    own_mention = f"<@{bot_user_id}>" if bot_user_id else None
    cleaned = re.sub(rf"\s*{re.escape(own_mention)}\s*", " ", raw).strip() if own_mention else raw
    return Message(
        team=str(team),
        channel=str(channel),
        user=str(user),
        text=unescape(cleaned),  # a bare mention says nothing: refused as blank
        ts=str(ts),
        thread_ts=str(event["thread_ts"]) if event.get("thread_ts") else None,
        direct=event.get("channel_type") == "im",
        mentioned=event.get("type") == "app_mention" or (own_mention is not None and own_mention in raw),
    )


@dataclass(frozen=True)
class Routes:
    """Which agent a new conversation goes to: the one its first message names (``deploy: ...``),
    else its channel's, else the default."""

    default: str
    channels: Mapping[str, str]
    agents: frozenset[str]

    def pick(self, message: Message) -> tuple[str, Message]:
        """The agent, and the message without the name that picked it."""
        named = AGENT_PREFIX.match(message.text)
        if named is not None and named.group(1) in self.agents:
            return named.group(1), replace(message, text=named.group(2).strip())
        return self.channels.get(message.channel, self.default), message


class Inbound:
    """Hands a person's message to the thread of its Slack thread."""

    def __init__(self, gateway: Gateway, routes: Routes, answers: Answers) -> None:
        self.gateway = gateway
        self.routes = routes
        self.answers = answers

    def receive(self, message: Message) -> Submitted:
        """The answer to the thread's pending question, if the writer may answer it; otherwise a
        new trigger for the thread (started if this mention or DM opens a conversation)."""
        thread_id = self.gateway.thread_of(message.route)
        if thread_id is None and not (message.mentioned or message.direct):
            raise Ignored("a channel message outside the threads the bot is part of")
        if thread_id is not None:
            answered = self.answers.reply(thread_id, message.user, message.text, message.key)
            if answered is not None:
                return answered
            # The conversation has its agent; a name at the start is just words now.
            return self.gateway.converse(message.route, self.routes.default, message.trigger())
        agent, message = self.routes.pick(message)
        log.info("slack.routed", channel=message.channel, agent=agent)
        return self.gateway.converse(message.route, agent, message.trigger())
