"""The agents Outerloop ships with, and the registry built from settings."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

from agent.definition import Registry
from agent.events import Expiry
from bot.agents.deploy import deploy_agent
from bot.settings import Settings


def load_registry(settings: Settings) -> Registry:
    """The registry named by ``OUTERLOOP_AGENTS`` (``module:function``), built from settings."""
    module_name, _, attribute = settings.agents.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute or "agents", None)
    if not callable(factory):
        raise ValueError(f"OUTERLOOP_AGENTS={settings.agents!r} does not name a function")
    registry = factory(settings)
    if not isinstance(registry, Registry):
        raise TypeError(f"{settings.agents} returned {type(registry).__name__}, not a Registry")
    return registry


def bundled_agents(settings: Settings) -> Registry:
    repo = settings.deploy_repo or Path(".")
    deploy = deploy_agent(
        repo,
        settings.deploy_command,
        settings.approvers,
        request_expiry(settings),
        tool_approvers=settings.tool_approvers,
    )
    return Registry([deploy])


def request_expiry(settings: Settings) -> Expiry | None:
    """The time limit on the bundled agents' human requests (``OUTERLOOP_REQUEST_*``)."""
    if settings.request_ttl is None:
        return None
    return Expiry(
        wait=timedelta(seconds=settings.request_ttl),
        reminders=settings.request_reminders,
        escalate_to=settings.escalation_approvers,
    )
