"""Which model answers an agent: Anthropic when a key is configured, else its script."""

from __future__ import annotations

import structlog

from agent.definition import AgentCannotRun, AgentSpec
from agent.model import AsyncModel, Immediate
from agent.scripted_model import ScriptedModel
from bot.settings import Settings

log = structlog.get_logger(__name__)


class NoModel(AgentCannotRun):
    """Neither an API key nor a script is available for an agent."""


def model_for(agent: AgentSpec, settings: Settings) -> AsyncModel:
    """The model the caller process asks for ``agent``: Anthropic with a key, else its script."""
    if settings.anthropic_api_key:
        from agent.anthropic_model import (  # the SDK takes a second to import
            DEFAULT_MAX_TOKENS,
            AsyncAnthropicModel,
        )

        chosen = agent.model
        return AsyncAnthropicModel(
            api_key=settings.anthropic_api_key,
            model=answering_model(agent, settings),
            base_url=settings.anthropic_base_url,
            max_tokens=chosen.max_tokens or DEFAULT_MAX_TOKENS,
            sampling=chosen.sampling,
        )
    check_model(agent, settings)
    assert agent.script is not None, "check_model said the agent has a script"
    log.info("model.scripted", agent=agent.name, script=str(agent.script))
    return Immediate(ScriptedModel.from_file(agent.script))


def check_model(agent: AgentSpec, settings: Settings) -> None:
    """Raise ``NoModel`` if no model can answer ``agent``: no API key, and no script to play.

    Workers check this without building a model (only callers ask one), so that a thread
    whose agent cannot run fails at once, saying what to fix."""
    if settings.anthropic_api_key:
        return
    if agent.script is None:
        raise NoModel(
            f"agent {agent.name} cannot run: ANTHROPIC_API_KEY is not set and the agent has no "
            "script.json; set the key, or give the agent a script"
        )
    if not agent.script.is_file():
        raise NoModel(f"agent {agent.name} cannot run: its script {agent.script} does not exist")


def answering_model(agent: AgentSpec, settings: Settings) -> str:
    """The model ``model_for`` asks for ``agent``: its own, else the configured one; ``scripted``
    without an API key."""
    if settings.anthropic_api_key:
        return agent.model.name or settings.outerloop_model
    return "scripted"


def provider_and_model(agent: AgentSpec, settings: Settings) -> tuple[str, str]:
    """Who answers ``agent`` and with which model (``model_for``), as traces name them."""
    provider = "anthropic" if settings.anthropic_api_key else "outerloop.scripted"
    return provider, answering_model(agent, settings)
