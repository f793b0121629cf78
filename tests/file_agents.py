"""A deploy agent in files whose ``deploy`` tool's approval rules a test chooses in ``agent.toml``.

It uses the bundled agent's tools, prompt and script, so it deploys like ``deploy`` does;
only its ``[[tools]]`` section for ``deploy`` differs: what ``rules`` says, as TOML lines."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.agents import BUNDLED

SHIPPER = "shipper"


def shipper(agents_dir: Path, rules: str, name: str = SHIPPER) -> Path:
    """Write the agent ``name`` into ``agents_dir``, its ``deploy`` tool with ``rules``
    (e.g. ``"min_approvals = 2"``); returns ``agents_dir``, for ``OUTERLOOP_AGENTS_DIR``."""
    folder = agents_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.toml").write_text(
        f"""description = "It deploys tags, under stricter approval rules."

[[tools]]
function = "bot.agents.deploy:list_tags"
policy = "read_only"

[[tools]]
function = "bot.agents.deploy:deploy"
policy = "needs_approval"
{rules}
"""
    )
    for name in ("prompt.md", "script.json"):
        shutil.copy(BUNDLED / "deploy" / name, folder / name)
    return agents_dir
