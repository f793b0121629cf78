"""The agents Outerloop ships with, and the registry built from settings."""

from __future__ import annotations

from pathlib import Path

from agent.definition import Registry
from bot.agents.deploy import deploy_agent
from bot.settings import Settings


def bundled_agents(settings: Settings) -> Registry:
    repo = settings.deploy_repo or Path(".")
    return Registry([deploy_agent(repo, settings.deploy_command, settings.approvers)])
