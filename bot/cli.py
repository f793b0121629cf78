"""The ``outerloop`` command line."""

from __future__ import annotations

import click

from bot.agents import bundled_agents
from bot.settings import Settings


@click.group()
@click.version_option(package_name="outerloop")
def main() -> None:
    """Outerloop runs small LLM agents from Slack, email, schedules and webhooks,
    pausing for humans and resuming where they left off."""


@main.command()
def agents() -> None:
    """List the agents this deployment offers and their tools."""
    for spec in bundled_agents(Settings()):
        tools = ", ".join(
            f"{t.name}{' (needs approval)' if t.policy.needs_approval else ''}" for t in spec.tools
        )
        click.echo(f"{spec.name}: {spec.description}\n  tools: {tools}")
