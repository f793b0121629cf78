"""Which model answers an agent: Anthropic when a key is configured, else its script."""

from __future__ import annotations

import structlog

from agent.anthropic_model import AsyncAnthropicModel
from agent.definition import AgentSpec
from agent.model import AsyncModel, Immediate
from agent.scripted_model import ScriptedModel
from bot.settings import Settings

log = structlog.get_logger(__name__)


class NoModel(RuntimeError):
    """Neither an API key nor a script is available for an agent."""


def model_for(agent: AgentSpec, settings: Settings) -> AsyncModel:
    """The model the caller process asks for ``agent``: Anthropic with a key, else its script."""
    if settings.anthropic_api_key:
        return AsyncAnthropicModel(
            api_key=settings.anthropic_api_key,
            model=settings.outerloop_model,
            base_url=settings.anthropic_base_url,
        )
    if agent.script is None:
        raise NoModel(f"agent {agent.name} has no script; set ANTHROPIC_API_KEY to run it")
    log.info("model.scripted", agent=agent.name, script=str(agent.script))
    return Immediate(ScriptedModel.from_file(agent.script))


def model_name(settings: Settings) -> str:
    """The model's name for concurrency limits: the configured model, or ``scripted``."""
    return settings.outerloop_model if settings.anthropic_api_key else "scripted"
