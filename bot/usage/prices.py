"""What model calls cost: a price per model, from Anthropic's list prices or a file of your own.

The defaults are ``prices.toml`` next to this module; ``OUTERLOOP_PRICES`` names a TOML file
of the same shape whose entries replace them model by model. A call of a model with no price
costs ``None``, "unknown": a total that silently left it out would look cheaper than it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.events import Usage
from channels.config import load_entries

DEFAULTS = Path(__file__).with_name("prices.toml")
MILLION = 1_000_000
DATED = re.compile(r"-\d{8}$")
"""The date a model id may end with (``claude-sonnet-4-5-20250929``): priced as the id without it."""


class Rates(BaseModel):
    """USD per million tokens of each kind the Messages API counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float = Field(ge=0, description="5-minute cache writes (cache_creation_input_tokens).")
    cache_read: float = Field(ge=0, description="Cache hits (cache_read_input_tokens).")

    def cost(self, usage: Usage) -> float:
        """USD for ``usage`` at these rates."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / MILLION


class Price(Rates):
    """One model's entry, ``[models.NAME]``: its rates, and dearer ones for long prompts."""

    name: str
    long_prompt: int | None = Field(default=None, gt=0)
    """Prompt tokens (input, cache writes and reads) above which a call pays ``long``."""
    long: Rates | None = None

    @model_validator(mode="after")
    def _long_together(self) -> Self:
        if (self.long_prompt is None) != (self.long is None):
            raise ValueError("long_prompt and long go together")
        return self

    def cost(self, usage: Usage) -> float:
        """USD for one call's ``usage``: a long prompt prices all of the call's tokens at ``long``."""
        prompt = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
        if self.long is not None and self.long_prompt is not None and prompt > self.long_prompt:
            return self.long.cost(usage)
        return super().cost(usage)


@dataclass(frozen=True)
class Prices:
    """The price table: model id to its ``Price``."""

    models: Mapping[str, Price]

    def of(self, model: str) -> Price | None:
        return self.models.get(model) or self.models.get(DATED.sub("", model))

    def cost(self, model: str, usage: Usage) -> float | None:
        """USD for one call of ``model``; None when the model has no price. A call that used no
        tokens (a scripted model's) costs nothing, whatever its model."""
        if not (
            usage.input_tokens
            or usage.output_tokens
            or usage.cache_creation_input_tokens
            or usage.cache_read_input_tokens
        ):
            return 0.0
        price = self.of(model)
        return price.cost(usage) if price is not None else None


@cache
def load_prices(path: Path | None = None) -> Prices:
    """The default prices, with the entries of the file at ``path`` (``OUTERLOOP_PRICES``) in
    place of theirs; raises ``ConfigError`` naming the file, entry and field that is wrong."""
    given = load_entries(path, "models", Price) if path is not None else {}
    return Prices({**load_entries(DEFAULTS, "models", Price), **given})
