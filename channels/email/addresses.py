"""Email addresses as the inbox sees them: recipients, plus tags, allowlists, Message-ID routes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PLUS = "+"
"""Separates a mailbox from its tag (``bot+TOKEN@example.com``); replies to requests use it."""

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_TAG = re.compile(r"\+[^@\s<>\"',;]+@")
REDACTED = "+[redacted]@"


def normalize(address: str) -> str:
    """Addresses compare case-insensitively here (as every large mail provider treats them)."""
    return address.strip().strip("<>").lower()


def is_address(entry: str) -> bool:
    """Whether an approvers entry is a mail address (not a Slack user id or group)."""
    local, at, domain = normalize(entry).rpartition("@")
    return bool(local and at and domain)


def domain_of(address: str) -> str:
    return normalize(address).rpartition("@")[2]


def split_tag(address: str) -> tuple[str, str | None]:
    """``bot+tag@example.com`` -> (``bot@example.com``, ``tag``); no tag -> (address, None)."""
    local, at, domain = normalize(address).rpartition("@")
    if not at:
        return normalize(address), None
    mailbox, plus, tag = local.partition(PLUS)
    return f"{mailbox}@{domain}", (tag if plus else None)


def tagged(address: str, tag: str) -> str:
    local, _, domain = normalize(address).rpartition("@")
    return f"{local}{PLUS}{tag}@{domain}"


def redacted(text: str) -> str:
    """``text`` with the tag of every plus-address in it blanked out: the tag of a reply
    address is a secret token, and no log line may hold one."""
    return _TAG.sub(REDACTED, text)


def message_ids(header: str | None) -> tuple[str, ...]:
    """The Message-IDs in a References / In-Reply-To / Message-ID header, without brackets."""
    return tuple(_MESSAGE_ID.findall(header or ""))


def trimmed(chain: tuple[str, ...] | list[str], keep: int) -> list[str]:
    """At most ``keep`` ids of a References chain: the root, then the most recent (RFC 5322 3.6.4)."""
    if len(chain) <= keep:
        return list(chain)
    return [chain[0], *chain[len(chain) - keep + 1 :]]


def route(message_id: str) -> str:
    """The conversation key of a message: replies to it continue the thread it belongs to."""
    return f"email:{message_id.strip().strip('<>')}"


@dataclass(frozen=True)
class Allowlist:
    """Senders allowed to write to the inbox: whole addresses, or every address of a domain.

    Empty allows nobody: an inbox reachable from the internet must say whom it serves.
    """

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        """Entries with an ``@`` are addresses (``alice@example.com``), others domains
        (``example.com``; ``@example.com`` is read as the domain too)."""
        cleaned = [normalize(entry) for entry in entries if entry.strip()]
        return cls(
            addresses=frozenset(e for e in cleaned if "@" in e.lstrip("@")),
            domains=frozenset(e.lstrip("@") for e in cleaned if "@" not in e.lstrip("@")),
        )

    def allows(self, address: str) -> bool:
        normal = normalize(address)
        return normal in self.addresses or ("@" in normal and domain_of(normal) in self.domains)

    def describe(self) -> str:
        return ", ".join(sorted(self.addresses | self.domains)) or "nobody"
