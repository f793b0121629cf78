"""Who may answer a request from Slack: listed users, and members of listed user groups.

A request's approvers are Slack user ids (``U...``/``W...``), user group ids
(``S...``) or other names (API and CLI users). Group membership lives in Slack,
so it is looked up when someone clicks or replies, and kept for a minute so a
burst of clicks costs one call (``usergroups.users.list`` allows ~20 a minute).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from channels.slack.blocks import GROUP_ID, mention

log = structlog.get_logger(__name__)

MEMBERSHIP_TTL = 60.0
"""Seconds a user group's member list is trusted before it is looked up again."""


class NotAnApprover(PermissionError):
    """The person is neither listed nor in a listed group (invariant 7)."""

    def __init__(self, user: str, approvers: Sequence[str]) -> None:
        super().__init__(f"only {', '.join(mention(a) for a in approvers)} may answer this request")
        self.user = user


class MembershipUnknown(RuntimeError):
    """Slack could not say who is in a user group; the person should try again shortly."""


class Approvers:
    """Checks a person against a request's approvers, asking Slack about groups."""

    def __init__(
        self, client: WebClient, ttl: float = MEMBERSHIP_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def via(self, approvers: Sequence[str], user: str) -> str | None:
        """The group through which ``user`` may answer, or None when they may on their own
        account (listed themselves, or nobody is listed).

        Raises ``NotAnApprover``, or ``MembershipUnknown`` when Slack cannot be asked."""
        if not approvers or user in approvers:
            return None
        for entry in approvers:
            if GROUP_ID.fullmatch(entry) and user in self.members(entry):
                return entry
        raise NotAnApprover(user, approvers)

    def members(self, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        try:
            response = self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error")
            log.warning("slack.group_lookup_failed", group=group, error=error)
            raise MembershipUnknown(
                f"could not check who is in {mention(group)} (Slack said: {error})"
            ) from exc
        except SlackClientError as exc:
            log.warning("slack.group_lookup_failed", group=group, error=str(exc))
            raise MembershipUnknown(f"could not reach Slack to check who is in {mention(group)}") from exc
        members = frozenset(str(user) for user in response.get("users") or ())
        with self._lock:
            self._members[group] = (self.clock(), members)
        return members
