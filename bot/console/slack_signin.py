"""'Sign in with Slack': the OpenID Connect authorization code flow against Slack.

The browser is sent to Slack's authorize endpoint with a random ``state`` and ``nonce``,
kept in Redis for ``FLOW_TTL`` seconds and bound to the browser's session; Slack sends it
back with a code, which is exchanged (with the client secret) for an ID token. The token's
signature is checked against Slack's published keys, and its issuer, audience, expiry and
nonce against ours; its ``https://slack.com/user_id`` claim is the person, the same id
approvers are named by. Authlib makes the token request; joserfc checks the token.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, cast

import httpx
import redis
import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bot.settings import Settings
from bot.state.store import key

log = structlog.get_logger(__name__)

FLOW_TTL = 600
"""Seconds between leaving for Slack and coming back."""
CALLBACK_PATH = "/console/signin/slack/callback"
USER_CLAIM = "https://slack.com/user_id"
TEAM_CLAIM = "https://slack.com/team_id"


class SlackSignInFailed(Exception):
    """Slack sign-in did not prove who this is; the message says why, for the person."""


@dataclass(frozen=True)
class SlackOpenId:
    client_id: str
    client_secret: str
    issuer: str
    redirect_uri: str
    team_id: str | None = None

    @property
    def authorize_url(self) -> str:
        return f"{self.issuer}/openid/connect/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/api/openid.connect.token"

    @property
    def keys_url(self) -> str:
        return f"{self.issuer}/openid/connect/keys"

    def client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope="openid profile email",
            redirect_uri=self.redirect_uri,
            token_endpoint_auth_method="client_secret_post",
            timeout=10,
        )


def slack_openid(settings: Settings) -> SlackOpenId | None:
    """Slack sign-in as configured, or None without ``SLACK_CLIENT_ID`` and ``SLACK_CLIENT_SECRET``."""
    if not (settings.slack_client_id and settings.slack_client_secret):
        return None
    return SlackOpenId(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        issuer=settings.slack_openid_url.rstrip("/"),
        redirect_uri=settings.console_base + CALLBACK_PATH,
        team_id=settings.slack_team_id,
    )


def start(slack: SlackOpenId, connection: redis.Redis, session_id: str) -> str:
    """The URL to send the browser to; remembers its state and nonce for this session."""
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    flow = json.dumps({"nonce": nonce, "session": session_id})
    connection.set(key("console", "oidc", state), flow, ex=FLOW_TTL)
    url, _ = slack.client().create_authorization_url(slack.authorize_url, state=state, nonce=nonce)
    return cast(str, url)


async def finish(slack: SlackOpenId, connection: redis.Redis, session_id: str, state: str, code: str) -> str:
    """The Slack user id the returning browser proved; raises ``SlackSignInFailed``."""
    raw = cast(bytes | None, connection.getdel(key("console", "oidc", state)))
    flow = json.loads(raw) if raw else None
    # The state must be one we made, for this very browser: no replayed or planted callbacks.
    if flow is None or not secrets.compare_digest(flow["session"], session_id):
        raise SlackSignInFailed("this sign-in was not started here or took too long: sign in again")
    try:
        async with slack.client() as client:
            token = await client.fetch_token(slack.token_url, code=code, grant_type="authorization_code")
            keys = (await client.get(slack.keys_url)).raise_for_status().json()
    except (httpx.HTTPError, ValueError, KeyError) as error:
        log.warning("console.slack_signin_failed", reason=type(error).__name__)
        raise SlackSignInFailed("Slack did not confirm the sign-in: try again") from error
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SlackSignInFailed("Slack sent no ID token: check the app's OpenID scopes")
    return _person(slack, id_token, keys, flow["nonce"])


def _person(slack: SlackOpenId, id_token: str, keys: dict[str, Any], nonce: str) -> str:
    try:
        claims = jwt.decode(id_token, KeySet.import_key_set(cast(Any, keys)), algorithms=["RS256"]).claims
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": slack.issuer},
            aud={"essential": True, "value": slack.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(claims)
    except (JoseError, ValueError) as error:
        log.warning("console.slack_signin_failed", reason=type(error).__name__)
        raise SlackSignInFailed("Slack's ID token did not check out: sign in again") from error
    if slack.team_id and claims.get(TEAM_CLAIM) != slack.team_id:
        raise SlackSignInFailed("that Slack workspace may not sign in to this console")
    person = claims.get(USER_CLAIM)
    if not isinstance(person, str) or not person:
        raise SlackSignInFailed("Slack's ID token names no user")
    return person
