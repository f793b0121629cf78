"""The agents Outerloop ships with, and the registry built from settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from agent.definition import Registry
from bot.agents.files import load_agent, load_agents_dir
from bot.agents.tool_refs import resolve
from bot.settings import Settings

BUNDLED = Path(__file__).parent
"""The bundled agents' folders, in the same file form as a deployment's own."""


def load_registry(settings: Settings) -> Registry:
    """The agents of ``OUTERLOOP_AGENTS`` (``module:function`` returning a ``Registry``) together
    with those in the folders of ``OUTERLOOP_AGENTS_DIR``."""
    importable_here()
    factory = resolve(settings.agents if ":" in settings.agents else f"{settings.agents}:agents")
    registry = factory(settings)
    if not isinstance(registry, Registry):
        raise TypeError(f"{settings.agents} returned {type(registry).__name__}, not a Registry")
    if settings.agents_dir.is_dir():
        for spec in load_agents_dir(settings.agents_dir, settings):
            if spec.name in registry:
                raise ValueError(
                    f"{settings.agents_dir / spec.name}: agent {spec.name!r} is also defined by "
                    f"OUTERLOOP_AGENTS={settings.agents}; rename one of them"
                )
            registry.register(spec)
    return registry


def importable_here() -> None:
    """Let ``module:function`` references name modules in the current directory, in every
    process alike: ``python -m`` and ``outerloop dev``'s children see it, a console script not."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def bundled_agents(settings: Settings) -> Registry:
    """``deploy``, from ``bot/agents/deploy``."""
    return Registry([load_agent(BUNDLED / "deploy", settings)])
