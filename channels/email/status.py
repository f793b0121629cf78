"""SMTP replies the inbox gives: ``Refused`` carries a refusal's code and reason to the client."""

from __future__ import annotations

ACCEPTED = "250 2.0.0 OK"
DUPLICATE = "250 2.0.0 OK: already received; nothing more to do"
TRY_LATER = "451 4.3.0 the inbox could not store the mail; please try again later"


class Refused(Exception):
    """Mail the inbox will not take. ``status`` is the SMTP reply: a permanent 5xx code, an
    RFC 3463 enhanced code, and a reason the sender can act on (it also goes to the log)."""

    def __init__(self, code: int, enhanced: str, reason: str) -> None:
        super().__init__(reason)
        self.status = f"{code} {enhanced} {reason}"
