"""Slack's request signature, checked on the raw body before anything parses it.

Slack signs each request with ``v0=HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")``
in ``X-Slack-Signature`` and sends the timestamp in ``X-Slack-Request-Timestamp``. The
HTTP endpoint calls ``verify_request`` before Bolt sees the request: Bolt would parse
the body first, answer 500 to a timestamp that is not a number, and log the whole
body of every badly signed request.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from slack_sdk.signature import SignatureVerifier

from channels.signing import check_timestamp

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
TOLERANCE = 300.0
"""Seconds a request's timestamp may be away from our clock, as Slack recommends."""


class Unsigned(PermissionError):
    """A request Slack did not sign, signed for another body, or signed too long ago; the
    message says which (and never quotes the body)."""


def verify_request(signing_secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise ``Unsigned`` unless ``body`` carries a valid, fresh Slack signature (``headers``
    as Starlette gives them: looked up case-insensitively)."""
    timestamp, signature = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise Unsigned(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    check_timestamp(TIMESTAMP_HEADER, timestamp, now, TOLERANCE, Unsigned)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Unsigned("the body is not UTF-8, so Slack did not send it") from None
    expected = SignatureVerifier(signing_secret).generate_signature(timestamp=timestamp, body=text)
    if expected is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unsigned(f"{SIGNATURE_HEADER} does not match the body and the signing secret")
