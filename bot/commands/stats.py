"""``outerloop stats``: the command; what it counts is ``bot.usage.stats`` (imported when it runs)."""

from __future__ import annotations

import json

import click

from bot.commands.errors import connect, friendly_errors


@click.command()
@click.option("--since", default="24h", show_default=True, help="Threads started since: 24h, 7d, 30m.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, per agent and in total.")
@friendly_errors
def stats(since: str, as_json: bool) -> None:
    """Threads by status and agent, steps, tool errors, approvals and their waits, tokens and cost."""
    from bot.approvals.audit import parse_since
    from bot.settings import Settings
    from bot.usage.prices import load_prices
    from bot.usage.stats import gather, render

    start = parse_since(since)
    rt = connect(Settings())
    gathered = gather(rt.store, start, load_prices(rt.settings.prices_file))
    click.echo(json.dumps(gathered.as_json(), indent=2) if as_json else render(gathered))
