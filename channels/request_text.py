"""The one check every door (CLI, HTTP, Slack, email, schedules, webhooks) makes of a request's text.

A request that says nothing cannot be acted on; refusing it at the door, with the same
sentence wherever it came from, beats starting a thread the agent can only ask about.
"""

from __future__ import annotations

BLANK_REQUEST = "the request is empty: say what the agent should do"


class BlankRequest(ValueError):
    """The text of a new request is empty or only whitespace."""

    def __init__(self) -> None:
        super().__init__(BLANK_REQUEST)


def check_request_text(text: str) -> str:
    """``text`` if it says something; raises ``BlankRequest`` otherwise."""
    if not text.strip():
        raise BlankRequest()
    return text
