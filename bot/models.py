"""Which model answers an agent: Anthropic when a key is configured, else its script."""

from __future__ import annotations

import structlog

from agent.definition import AgentCannotRun, AgentSpec
from agent.model import Model
from agent.scripted_model import ScriptedModel
from bot.settings import Settings

log = structlog.get_logger(__name__)


class NoModel(AgentCannotRun):
    """Neither an API key nor a script is available for an agent."""


def model_for(agent: AgentSpec, settings: Settings) -> Model:
    if settings.anthropic_api_key:
        from agent.anthropic_model import AnthropicModel  # the SDK takes a second to import

        chosen = agent.model
        return AnthropicModel(
            api_key=settings.anthropic_api_key,
            model=chosen.name or settings.outerloop_model,
            base_url=settings.anthropic_base_url,
            max_tokens=chosen.max_tokens or 1024,
            sampling=chosen.sampling,
        )
    if agent.script is None:
        raise NoModel(
            f"agent {agent.name} cannot run: ANTHROPIC_API_KEY is not set and the agent has no "
            "script.json; set the key, or give the agent a script"
        )
    if not agent.script.is_file():
        raise NoModel(f"agent {agent.name} cannot run: its script {agent.script} does not exist")
    log.info("model.scripted", agent=agent.name, script=str(agent.script))
    return ScriptedModel.from_file(agent.script)
