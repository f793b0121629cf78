"""Webhooks: a signed ``POST /webhooks/{name}`` starts a thread for the webhook's agent.

Each webhook is a ``[webhooks.<name>]`` entry (``OUTERLOOP_WEBHOOKS``): an agent, a
prompt that may quote the JSON payload (``${pull_request.title}``, ``${commits.0.id}``),
the shared secret (``secret_env``, the variable holding it, or ``secret``), and
optionally ``report_to``. The sender signs every delivery:

    X-Outerloop-Timestamp: Unix seconds when it was sent
    X-Outerloop-Delivery:  an id unique to the delivery (a retry sends the same id)
    X-Outerloop-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<delivery>.<body>")>

The delivery id is signed with the body because it is the dedupe key: were it not,
a captured request replayed with a fresh id within the tolerance would run twice.
A request outside the tolerance, unsigned or signed wrongly is refused; a delivery
seen before starts nothing and answers with the thread its first copy started.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from agent.events import Origin, Trigger
from channels.config import ConfigError, ReportTo, load_entries, report_origin
from channels.gateway import Gateway, Submitted
from channels.signing import check_timestamp

log = structlog.get_logger(__name__)

SECTION = "webhooks"
TIMESTAMP_HEADER = "X-Outerloop-Timestamp"
DELIVERY_HEADER = "X-Outerloop-Delivery"
SIGNATURE_HEADER = "X-Outerloop-Signature"
MAX_BODY = 1_000_000
"""Bytes a delivery may carry; a webhook asks an agent for something, it does not upload."""
MAX_PROMPT = 20_000
"""Characters of a rendered prompt, as for a thread started through the API."""
MIN_SECRET = 16
DELIVERY_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class Webhook(BaseModel):
    """One ``[webhooks.<name>]`` entry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    agent: str
    prompt: str = Field(min_length=1)
    secret: SecretStr | None = None
    secret_env: str | None = None
    """The environment variable holding the secret (keeps it out of the file)."""
    tolerance: float = Field(default=300.0, gt=0)
    """Seconds a delivery's timestamp may be away from the server's clock."""
    report_to: ReportTo | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give the secret as exactly one of secret_env = 'VARIABLE' or secret = '...'")
        return self

    def key(self) -> bytes:
        assert self.secret is not None, "load_webhooks resolves secret_env"
        return self.secret.get_secret_value().encode()


def load_webhooks(path: Path, environ: Mapping[str, str]) -> dict[str, Webhook]:
    """The webhooks in the TOML file at ``path``, each with its secret read from ``environ``."""
    hooks = load_entries(path, SECTION, Webhook)
    for name, hook in hooks.items():
        if hook.secret_env is not None:
            if not environ.get(hook.secret_env):
                raise ConfigError(f"{path}: [webhooks.{name}]: secret_env: {hook.secret_env} is not set")
            hook = hook.model_copy(update={"secret": SecretStr(environ[hook.secret_env])})
        if len(hook.key()) < MIN_SECRET:
            raise ConfigError(
                f"{path}: [webhooks.{name}]: the secret must be at least {MIN_SECRET} characters "
                "(e.g. openssl rand -hex 32)"
            )
        hooks[name] = hook
    return hooks


def signature(secret: bytes, timestamp: str, delivery: str, body: bytes) -> str:
    """The ``X-Outerloop-Signature`` value of a delivery."""
    signed = f"{timestamp}.{delivery}.".encode() + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


class UnknownWebhook(LookupError):
    """No webhook has this name."""


class WebhookRejected(PermissionError):
    """The delivery did not prove it came from the webhook's sender (missing or wrong
    signature, stale timestamp); nothing was recorded."""


class BadDelivery(ValueError):
    """A verified delivery the webhook cannot use (delivery id, payload); nothing was recorded."""


class PayloadTooLarge(BadDelivery):
    def __init__(self) -> None:
        super().__init__(f"the body is larger than {MAX_BODY} bytes")


class WebhookChannel:
    """Turns verified deliveries into triggers for the gateway."""

    def __init__(self, hooks: Mapping[str, Webhook], gateway: Gateway) -> None:
        self.hooks = dict(hooks)
        self.gateway = gateway

    def receive(self, name: str, headers: Mapping[str, str], body: bytes, now: float) -> Submitted:
        """Verify a delivery and start (or find) its thread; raises ``UnknownWebhook``,
        ``WebhookRejected`` or ``BadDelivery`` with the reason, which is also logged."""
        try:
            hook = self.hooks.get(name)
            if hook is None:
                raise UnknownWebhook(f"no webhook named {name!r}")
            delivery = verify(hook, {k.lower(): v for k, v in headers.items()}, body, now)
            text = render_prompt(hook.prompt, body)
        except (UnknownWebhook, WebhookRejected, BadDelivery) as exc:
            log.warning("webhook.rejected", webhook=name, reason=str(exc), error=type(exc).__name__)
            raise
        route = f"webhook:{name}:{delivery}"
        sender = f"webhook:{name}"
        origin = (
            report_origin(hook.report_to, sender)
            if hook.report_to is not None
            else Origin(channel="webhook", sender=sender, address={"delivery": delivery})
        )
        submitted = self.gateway.converse(route, hook.agent, Trigger(text=text, origin=origin, key=route))
        log.info(
            "webhook.received" if submitted.applied else "webhook.replayed",
            webhook=name,
            delivery=delivery,
            thread_id=submitted.thread.id,
        )
        return submitted


def verify(hook: Webhook, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """Check a delivery's timestamp and signature (``headers`` keys in lower case); returns
    its delivery id."""
    if len(body) > MAX_BODY:
        raise PayloadTooLarge()
    values = {}
    for header in (TIMESTAMP_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER):
        value = headers.get(header.lower())
        if not value:
            raise WebhookRejected(f"missing {header} header")
        values[header] = value
    timestamp, delivery = values[TIMESTAMP_HEADER], values[DELIVERY_HEADER]
    check_timestamp(TIMESTAMP_HEADER, timestamp, now, hook.tolerance, WebhookRejected)
    expected = signature(hook.key(), timestamp, delivery, body)
    if not hmac.compare_digest(expected.encode(), values[SIGNATURE_HEADER].encode()):
        raise WebhookRejected(
            f"{SIGNATURE_HEADER} does not match: sign '<timestamp>.<delivery>.<body>' with HMAC-SHA256 "
            "and the webhook's secret, and send sha256=<hex digest>"
        )
    if not DELIVERY_ID.match(delivery):
        raise BadDelivery(f"{DELIVERY_HEADER} must be 1 to 200 printable characters without spaces")
    return delivery


def render_prompt(template: str, body: bytes) -> str:
    """The prompt with each ``${dotted.path}`` replaced by that field of the JSON payload."""
    paths = PLACEHOLDER.findall(template)
    if not paths:
        return template
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadDelivery(f"the body is not JSON ({exc}), and the prompt quotes its fields") from exc
    text = PLACEHOLDER.sub(lambda match: _field(payload, match[1]), template)
    if len(text) > MAX_PROMPT:
        raise BadDelivery(f"the prompt would be {len(text)} characters, more than {MAX_PROMPT}")
    return text


def _field(payload: Any, path: str) -> str:
    value = payload
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise BadDelivery(f"the payload has no field {path!r}, which the webhook's prompt quotes")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
