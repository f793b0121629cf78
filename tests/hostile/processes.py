"""``outerloop web`` as a process of its own, with its log in a file, for tests that read the log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.services import Workers, cli_args, free_port, wait_for


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class WebProcess(Workers):
    """One ``outerloop web`` on a free port; ``url`` is its base URL once ``start`` returns."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        super().__init__({**env, "PORT": str(self.port)}, log, cli_args("web"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, count: int = 1, args: Sequence[str] | None = None) -> None:
        super().start(count, args)
        wait_for(lambda: _healthy(self.url), "outerloop web to answer /healthz")
