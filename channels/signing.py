"""What signed requests (Slack's, webhooks') share: a timestamp header checked before anything trusts it.

A timestamp is ASCII digits, few of them: ``int`` would refuse 4,300 digits and more
with a ``ValueError`` that reads like a bad payload, not like a forged request.
"""

from __future__ import annotations

import re

UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def check_timestamp(header: str, value: str, now: float, tolerance: float, refused: type[Exception]) -> None:
    """Raise ``refused`` with the reason unless ``value`` is Unix seconds within ``tolerance`` of ``now``."""
    if not UNIX_SECONDS.fullmatch(value):
        raise refused(f"{header} must be Unix seconds, not {value[:40]!r}")
    skew = abs(now - int(value))
    if skew > tolerance:
        raise refused(
            f"{header} is {skew:.0f} s away from the server's clock (at most {tolerance:.0f} s): "
            "a replayed request, or a sender whose clock is off"
        )
