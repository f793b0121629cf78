"""A local server playing Slack's OpenID Connect endpoints: authorize, token, keys.

``/openid/connect/authorize`` consents at once as ``user`` and redirects back with a code;
``/api/openid.connect.token`` trades the code (with the client secret and the same
redirect URI) for an RS256 ID token carrying the nonce it was asked for, Slack's user and
team claims; ``/openid/connect/keys`` publishes the public key. ``nonce_override`` makes
it sign a wrong nonce, to test that the console checks it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.local_server import LocalServer, QuietHandler

CLIENT_ID = "1234.5678"
CLIENT_SECRET = "fake-client-secret"
TEAM = "T0TEAM"


class FakeSlackOpenId(LocalServer):
    def __init__(self, user: str = "U0BOSS") -> None:
        self.user = user
        self.team = TEAM
        self.nonce_override: str | None = None
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-key"})
        self.codes: dict[str, dict[str, str]] = {}
        """What each code was issued for: nonce and redirect URI."""
        self.token_requests: list[dict[str, str]] = []
        super().__init__(lambda *args: _Handler(self, *args), "fake-slack-openid")

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.origin,
            "aud": CLIENT_ID,
            "sub": self.user,
            "exp": now + 300,
            "iat": now,
            "nonce": self.nonce_override or nonce,
            "https://slack.com/user_id": self.user,
            "https://slack.com/team_id": self.team,
        }
        return jwt.encode({"alg": "RS256", "kid": "fake-key"}, claims, self.key)


class _Handler(QuietHandler):
    def __init__(self, fake: FakeSlackOpenId, *args: Any) -> None:
        self.fake = fake
        super().__init__(*args)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        if url.path == "/openid/connect/keys":
            keys = KeySet([self.fake.key]).as_dict(private=False)
            self.reply(200, json.dumps(keys).encode(), "application/json", {})
        elif url.path == "/openid/connect/authorize":
            code = secrets.token_hex(8)
            self.fake.codes[code] = {"nonce": query["nonce"], "redirect_uri": query["redirect_uri"]}
            back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            self.reply(302, b"", "text/plain", {"Location": back})
        else:
            self.reply(404, b"{}", "application/json", {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        form = {name: values[0] for name, values in parse_qs(body).items()}
        self.fake.token_requests.append(form)
        issued = self.fake.codes.pop(form.get("code", ""), None)
        valid = (
            issued is not None
            and form.get("client_id") == CLIENT_ID
            and form.get("client_secret") == CLIENT_SECRET
            and form.get("redirect_uri") == issued["redirect_uri"]
        )
        if not valid or issued is None:
            self.reply(200, b'{"ok": false, "error": "invalid_code"}', "application/json", {})
            return
        answer = {
            "ok": True,
            "access_token": "xoxp-fake",
            "token_type": "Bearer",
            "id_token": self.fake.id_token(issued["nonce"]),
        }
        self.reply(200, json.dumps(answer).encode(), "application/json", {})
