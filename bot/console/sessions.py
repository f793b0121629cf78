"""Console sessions: who a browser is signed in as, kept in Redis behind a signed cookie.

The cookie holds only a random session id, signed with the console secret (itsdangerous),
``HttpOnly`` and ``SameSite=Lax`` (``Secure`` behind https). The person it is signed in as
lives in Redis under the id's digest, so signing out ends the session everywhere at once and
a copied cookie dies with it. Every browser gets an id before it signs in, so the sign-in
forms are CSRF-protected too; signing in and out change the id (no session fixation).

CSRF: every form carries ``HMAC(secret, session id)``; a POST whose token does not match
its cookie's session is refused, so another site cannot post as a signed-in person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import cast

import redis
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from bot.settings import Settings
from bot.state.store import key

COOKIE = "outerloop_session"
SESSION_TTL = 12 * 3600
"""Seconds a console session lasts; then its person signs in again."""
_SECRET_KEY = key("console", "secret")


class CsrfRefused(Exception):
    """A form was posted without the token of the browser's own session."""


@dataclass(frozen=True)
class Session:
    id: str
    """The random id the cookie carries (signed); never logged."""
    person: str | None
    """A Slack user id or an email address once signed in; None before."""
    via: str | None
    """How the person signed in: ``slack``, ``email`` or ``link``."""
    fresh: bool
    """The browser had no valid cookie: this id must be set on the response."""

    @property
    def credential(self) -> str:
        """What answers are recorded as coming through (``HumanResponse.credential``)."""
        return f"console:{self.via}"


def console_secret(settings: Settings, connection: redis.Redis) -> str:
    """``OUTERLOOP_CONSOLE_SECRET``, else a random one kept in Redis and shared by every web process."""
    if settings.console_secret:
        return settings.console_secret
    connection.set(_SECRET_KEY, secrets.token_urlsafe(32), nx=True)
    return cast(bytes, connection.get(_SECRET_KEY)).decode()


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    """Reads, starts and ends console sessions; makes and checks CSRF tokens."""

    def __init__(self, connection: redis.Redis, secret: str, secure: bool) -> None:
        self.redis = connection
        self.secret = secret
        self.secure = secure
        self.signer = URLSafeSerializer(secret, salt="outerloop-console-session")

    def of(self, request: Request) -> Session:
        """The browser's session; a new anonymous one if its cookie is missing, forged or stale."""
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                session_id = str(self.signer.loads(cookie))
            except BadSignature:
                session_id = None
            if session_id:
                raw = cast(
                    dict[bytes, bytes], self.redis.hgetall(key("console", "session", _digest(session_id)))
                )
                person, via = raw.get(b"person"), raw.get(b"via")
                return Session(
                    session_id, person.decode() if person else None, via.decode() if via else None, False
                )
        return Session(secrets.token_urlsafe(32), None, None, True)

    def sign_in(self, person: str, via: str) -> Session:
        """A new session for ``person``; the caller sets it on its response with ``keep``."""
        session = Session(secrets.token_urlsafe(32), person, via, True)
        name = key("console", "session", _digest(session.id))
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(name, mapping={"person": person, "via": via, "at": repr(time.time())})
            pipe.expire(name, SESSION_TTL)
            pipe.execute()
        return session

    def sign_out(self, session: Session) -> Session:
        """End ``session`` in Redis; returns the anonymous session that replaces it."""
        self.redis.delete(key("console", "session", _digest(session.id)))
        return Session(secrets.token_urlsafe(32), None, None, True)

    def keep(self, response: Response, session: Session) -> None:
        """Set ``session``'s cookie on ``response`` if the browser does not have it yet."""
        if session.fresh:
            response.set_cookie(
                COOKIE,
                self.signer.dumps(session.id),
                max_age=SESSION_TTL,
                httponly=True,
                samesite="lax",
                secure=self.secure,
                path="/",
            )

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self.secret.encode(), f"csrf:{session.id}".encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: Session, token: str | None) -> None:
        if session.fresh or not token or not hmac.compare_digest(token, self.csrf_token(session)):
            raise CsrfRefused("this form has expired or did not come from this console: reload and try again")
