"""The Slack channel's settings, and the Web API clients built from them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler

DEFAULT_API_URL = "https://slack.com/api/"
RATE_LIMIT_RETRIES = 3
"""How often a call answered 429 is tried again, each after the Retry-After Slack gives."""


@dataclass(frozen=True)
class SlackConfig:
    bot_token: str
    """The bot token (``xoxb-...``): posts messages, reads user groups."""
    signing_secret: str | None = None
    """Verifies requests to ``POST /slack/events``; not needed in Socket Mode."""
    app_token: str | None = None
    """An app-level token (``xapp-...``) with ``connections:write``: turns Socket Mode on."""
    api_url: str = DEFAULT_API_URL
    """The Web API base URL (a local fake in tests)."""
    agent: str = "deploy"
    """The agent that handles conversations started in Slack, unless routed elsewhere."""
    channels: Mapping[str, str] = field(default_factory=dict)
    """The agent for conversations started in a channel, by channel id (factor 10)."""
    agents: frozenset[str] = frozenset()
    """The agents a message may pick by starting with ``name:``."""

    def client(self, *, patient: bool = True) -> WebClient:
        """A Web API client. A patient one waits out rate limits (429 + Retry-After) and
        retries; an impatient one fails at once, for calls made while Slack waits for
        our acknowledgement (it allows 3 seconds)."""
        handlers: list[RetryHandler] = [ConnectionErrorRetryHandler()]
        if patient:
            handlers.append(RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
        return WebClient(
            token=self.bot_token,
            base_url=self.api_url.rstrip("/") + "/",
            retry_handlers=handlers,
            timeout=30 if patient else 2,
        )
