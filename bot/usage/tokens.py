"""Tokens and cost of model calls, read from threads' logs (their ``model_decided`` events).

Pure: events and a price table in, totals out. The log already holds every call's usage,
model and latency; nothing here is stored, and ``reduce`` derives nothing from it. A fork
counts only the calls made after it was forked: those it copied were paid for by its source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from agent.events import Event, Forked, ModelDecided
from bot.usage.prices import Prices


@dataclass(frozen=True)
class Spend:
    """What some model calls used and cost."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    latency: float = 0.0
    """Seconds the calls took, summed."""
    priced: float = 0.0
    """USD of the calls whose model has a price."""
    unpriced: frozenset[str] = field(default_factory=frozenset)
    """Models that used tokens but have no price: while there are any, the cost is unknown."""

    @property
    def cost(self) -> float | None:
        """USD of all the calls; None (unknown) when some call's model has no price."""
        return None if self.unpriced else self.priced

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            latency=self.latency + other.latency,
            priced=self.priced + other.priced,
            unpriced=self.unpriced | other.unpriced,
        )

    def as_json(self) -> dict[str, Any]:
        """The fields the API and ``--json`` outputs show (``cost_usd`` null: unknown)."""
        cost = self.cost
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "latency": round(self.latency, 3),
            "cost_usd": round(cost, 6) if cost is not None else None,
            "unpriced_models": sorted(self.unpriced),
        }

    def describe(self) -> str:
        """One line for people: calls, tokens, time, cost."""
        cache = ""
        if self.cache_read_input_tokens or self.cache_creation_input_tokens:
            cache = (
                f" (+{self.cache_read_input_tokens:,} cache read,"
                f" {self.cache_creation_input_tokens:,} cache write)"
            )
        tokens = f"{self.input_tokens:,} in{cache}, {self.output_tokens:,} out"
        return f"{self.calls} model calls, {tokens}, {self.latency:.1f} s, {cost_text(self)}"


def cost_text(spend: Spend) -> str:
    """``$0.0123``, or ``cost unknown`` naming the models without a price."""
    cost = spend.cost
    if cost is None:
        return f"cost unknown (no price for {', '.join(sorted(spend.unpriced))})"
    return f"${cost:,.4f}"


def of_call(decided: ModelDecided, prices: Prices) -> Spend:
    usage = decided.usage
    cost = prices.cost(decided.model, usage)
    return Spend(
        calls=1,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=usage.cache_read_input_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens,
        latency=decided.latency,
        priced=cost or 0.0,
        unpriced=frozenset() if cost is not None else frozenset({decided.model or "(unnamed)"}),
    )


def spent(events: Iterable[Event], prices: Prices) -> Spend:
    """What a thread's own model calls used: those after the last ``forked`` event, if any."""
    total = Spend()
    for event in events:
        if isinstance(event, Forked):
            total = Spend()
        elif isinstance(event, ModelDecided):
            total += of_call(event, prices)
    return total
