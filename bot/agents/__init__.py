"""The agents Outerloop ships with, and the registry built from settings."""

from __future__ import annotations

from agent.definition import Registry
from bot.agents.deploy import deploy_agent
from bot.settings import Settings


def bundled_agents(settings: Settings) -> Registry:
    return Registry([deploy_agent(settings.deploy_repo, settings.deploy_command, settings.approvers)])
