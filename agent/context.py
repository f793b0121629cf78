"""The context window, rendered by our own code (factor 3).

Each event becomes one compact XML-like tag (``agent.tags``). Errors that a later success
resolved are dropped (factor 9), and so are human responses the thread ignored (invariant 7);
when the rendering exceeds the agent's token budget, the oldest resolved events are folded
into one ``<compacted>`` summary, keeping the first request and the recent tail
(``agent.compaction``).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.compaction import KEEP_RECENT, fitted, tokens
from agent.definition import AgentSpec
from agent.events import Event
from agent.history import History
from agent.prompts import render
from agent.tags import MAX_OUTPUT_CHARS, render_event
from agent.thread import Thread

__all__ = [
    "KEEP_RECENT",
    "MAX_OUTPUT_CHARS",
    "estimate_tokens",
    "render_event",
    "render_events",
    "system_prompt",
    "user_prompt",
]


def estimate_tokens(text: str) -> int:
    """A cheap, deterministic token estimate (about four characters per token)."""
    return tokens(len(text))


def system_prompt(agent: AgentSpec) -> str:
    return render(
        "system",
        agent_name=agent.name,
        agent_description=agent.description,
        instructions=agent.instructions().strip(),
        error_limit=agent.error_limit,
    )


def user_prompt(thread: Thread, budget: int) -> str:
    return render("context", events=fitted(thread.events, budget))


def render_events(events: Sequence[Event], budget: int) -> str:
    """All ``events`` that matter to the model, compacted to fit ``budget`` tokens.

    Each event counts as heeded: ``user_prompt`` leaves out those its thread ignored."""
    return fitted(History(events), budget)
