"""The README's examples run as written."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from agent.tools import NEEDS_APPROVAL
from bot.settings import Settings
from tests.services import REPO


def test_the_your_own_agents_example_builds_a_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own agents", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    (tmp_path / "myagents.py").write_text(code.group(1))
    (tmp_path / "janitor.md").write_text("Keep the disks tidy.")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myagents", raising=False)
    import myagents  # type: ignore[import-not-found]

    registry = myagents.agents(Settings())
    janitor = registry.get("janitor")
    assert janitor.instructions() == "Keep the disks tidy."
    prune = janitor.tool("prune")
    assert prune is not None and prune.policy == NEEDS_APPROVAL
    assert "deploy" in registry
