"""Per-person API tokens: who is calling the HTTP API, proven by a secret only they hold.

``outerloop tokens create --for U0123ABCD`` makes one; the secret is shown once and only
its SHA-256 digest is kept. Layout (under ``ol:``):
- ``apitoken:{digest}`` hash: id, person, created_at, note — found by the digest of the
  bearer token a request carries;
- ``apitokens`` hash: token id -> digest, to list and revoke by id without the secret.

A plain SHA-256 is enough here, unlike for passwords: the secrets are 256 random bits
made by ``secrets``, so there is no dictionary to try and no point in a slow, salted hash;
and an unsalted digest is what lets a request find its token with one lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import redis

from bot.state.store import key

TOKEN_PREFIX = "olt_"
"""Marks an Outerloop token, so secret scanners and people recognize a leaked one."""
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,20}")
_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class InvalidPerson(ValueError):
    """A token was asked for something that is neither a Slack user id nor an email address."""

    def __init__(self, person: str) -> None:
        super().__init__(
            f"{person[:80]!r} is not a person: give a Slack user id (U0123ABCD) or an email address "
            "(alice@example.com)"
        )


class TokenNotFound(LookupError):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"no API token with id {token_id[:80]!r}; `outerloop tokens` lists them")


@dataclass(frozen=True)
class ApiToken:
    """What is kept of a token: never the secret, never its digest outside this module."""

    id: str
    person: str
    created_at: float
    note: str | None = None


def person_of(value: str) -> str:
    """``value`` as a person: a Slack user id as is, an email address in lower case."""
    value = value.strip()
    if _SLACK_USER.fullmatch(value):
        return value
    if _EMAIL.fullmatch(value):
        return value.lower()
    raise InvalidPerson(value)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokens:
    """The API tokens kept in Redis: create one, find one by its secret, list and revoke them."""

    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection
        """The runtime's connection, which answers bytes (RQ needs it so)."""

    def create(self, person: str, note: str | None = None) -> tuple[ApiToken, str]:
        """A new token for ``person``; returns it with its secret, which is not kept."""
        token = ApiToken(id=secrets.token_hex(6), person=person_of(person), created_at=time.time(), note=note)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = _digest(secret)
        fields = {"id": token.id, "person": token.person, "created_at": repr(token.created_at)}
        if note:
            fields["note"] = note
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key("apitoken", digest), items=[part for pair in fields.items() for part in pair])
            pipe.hset(key("apitokens"), token.id, digest)
            pipe.execute()
        return token, secret

    def find(self, secret: str) -> ApiToken | None:
        """The token whose secret is ``secret``, or None (unknown or revoked)."""
        return self._load(_digest(secret))

    def live(self) -> Iterator[ApiToken]:
        """Every live token, oldest first."""
        digests = cast(list[bytes], self.redis.hvals(key("apitokens")))
        tokens = [token for digest in digests if (token := self._load(digest.decode()))]
        yield from sorted(tokens, key=lambda token: token.created_at)

    def revoke(self, token_id: str) -> ApiToken:
        """Forget token ``token_id``: requests carrying it are refused from now on."""
        raw = cast(bytes | None, self.redis.hget(key("apitokens"), token_id))
        digest = raw.decode() if raw is not None else ""
        token = self._load(digest) if digest else None
        if token is None:
            raise TokenNotFound(token_id)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key("apitoken", digest))
            pipe.hdel(key("apitokens"), token_id)
            pipe.execute()
        return token

    def _load(self, digest: str) -> ApiToken | None:
        raw = cast(dict[bytes, bytes], self.redis.hgetall(key("apitoken", digest)))
        if not raw:
            return None
        fields = {name.decode(): value.decode() for name, value in raw.items()}
        return ApiToken(
            id=fields["id"],
            person=fields["person"],
            created_at=float(fields["created_at"]),
            note=fields.get("note"),
        )
