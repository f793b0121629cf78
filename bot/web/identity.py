"""Who calls the HTTP API, and whom an action is recorded as (invariant 7).

A bearer token is either the shared ``OUTERLOOP_API_TOKEN``, which acts as ``api``, or a
person's own token (``bot.web.api_tokens``), which acts as that person. Only the shared token,
and only with ``OUTERLOOP_API_TRUSTED_RESPONDER`` on, may name someone else: that is for an
integration which authenticates its people itself and answers for them.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from bot.web.api_tokens import TOKEN_PREFIX, ApiTokens
from channels.gateway import NotAllowed

SHARED = "api"
"""The identity, and the credential name, of the shared ``OUTERLOOP_API_TOKEN``."""


class Unauthorized(Exception):
    """A missing, unknown or revoked bearer token."""


class Impersonation(NotAllowed):
    """A caller named someone other than themself, and may not."""


@dataclass(frozen=True)
class Caller:
    person: str
    """Who the credential proves: a Slack user id, an email address, or ``api``."""
    credential: str
    """Which credential answered: ``api`` or ``token:<id>``; never a secret."""

    @property
    def shared(self) -> bool:
        return self.credential == SHARED


def authenticate(bearer: str | None, shared_token: str | None, tokens: ApiTokens) -> Caller:
    """The caller a bearer token proves; raises ``Unauthorized`` for anything else."""
    if not bearer:
        raise Unauthorized("missing bearer token: send Authorization: Bearer TOKEN")
    # Constant time, so the shared token cannot be guessed byte by byte from response times.
    if shared_token and hmac.compare_digest(bearer.encode(), shared_token.encode()):
        return Caller(person=SHARED, credential=SHARED)
    # Person tokens are found by digest, which leaks nothing about the secret by its timing.
    token = tokens.find(bearer) if bearer.startswith(TOKEN_PREFIX) else None
    if token is None:
        unset = "" if shared_token else " (OUTERLOOP_API_TOKEN is unset, so only person tokens work)"
        raise Unauthorized(f"unknown or revoked bearer token{unset}")
    return Caller(person=token.person, credential=f"token:{token.id}")


def acting_as(caller: Caller, named: str | None, trusted: bool) -> str:
    """Who an action by ``caller`` is recorded as, when the request names ``named``.

    ``trusted`` is ``OUTERLOOP_API_TRUSTED_RESPONDER``: the shared token may then name anyone.
    """
    if named is None or named == caller.person:
        return caller.person
    if caller.shared and trusted:
        return named
    if caller.shared:
        raise Impersonation(
            f"the shared OUTERLOOP_API_TOKEN acts as {SHARED!r} and may not name {named!r}: use that "
            "person's own token (outerloop tokens create --for ...), or set "
            "OUTERLOOP_API_TRUSTED_RESPONDER=true if this integration authenticates its people itself"
        )
    raise Impersonation(f"this token belongs to {caller.person} and may not act as {named!r}")
