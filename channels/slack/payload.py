"""The shape of a Slack payload, checked after its signature and before Bolt reads it.

Bolt parses a request's body and then reaches into it assuming Slack's shapes:
``event`` is an object, ``authorizations`` a list of objects, ``user`` a string or an
object. A signed payload of another shape made Bolt raise and the endpoint answer
500 with a traceback; here it is refused with the reason instead. Only what Bolt and
our listeners read is checked; every other field may be anything.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from slack_bolt.request.internals import parse_body

Ref = str | dict[str, Any] | None
"""A user, team, channel or enterprise: an id in events, an object in interactivity, null in some."""


CONTAINERS = (
    "authorizations",
    "event",
    "message",
    "previous_message",
    "item",
    "assistant_thread",
    "view",
    "function_data",
    "actions",
    "response_urls",
)


class Action(BaseModel):
    """A clicked element: Bolt matches listeners on its ``action_id``."""

    model_config = ConfigDict(extra="allow")

    action_id: str
    block_id: str | None = None


class View(BaseModel):
    """A submitted modal: Bolt matches listeners on its ``callback_id``."""

    model_config = ConfigDict(extra="allow")

    callback_id: str
    private_metadata: str | None = None


class Part(BaseModel):
    """A payload, or a part of one that Bolt looks into the same way (``event``, ``message``...)."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    subtype: str | None = None
    callback_id: str | None = None
    command: str | None = None
    user: Ref = None
    team: Ref = None
    channel: Ref = None
    enterprise: Ref = None
    authorizations: list[Part] | None = None
    event: Part | None = None
    message: Part | None = None
    previous_message: Part | None = None
    item: Part | None = None
    assistant_thread: Part | None = None
    view: View | None = None
    function_data: dict[str, Any] | None = None
    actions: list[Action] | None = None
    response_urls: list[dict[str, Any]] | None = None

    @field_validator(*CONTAINERS, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        """Absent is fine; null is not, as Bolt reads ``payload.get("event", {}).get(...)``."""
        if value is None:
            raise ValueError("must be absent or an object or list, not null")
        return value


class Malformed(ValueError):
    """A signed request whose body is not a payload Slack sends; the message says what is wrong."""


def check_payload(body: str, content_type: str | None) -> None:
    """Raise ``Malformed`` unless Bolt can read ``body`` (parsed as Bolt parses it) safely."""
    try:
        payload = parse_body(body, content_type)
    except ValueError as exc:
        raise Malformed(f"the payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Malformed(f"the payload is a JSON {type(payload).__name__}, not an object")
    try:
        Part.model_validate(payload)
    except ValidationError as exc:
        where = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors()[:3])
        raise Malformed(f"the payload's fields have the wrong types: {where}") from None
