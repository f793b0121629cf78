"""A deploy bot: lists a repository's git tags and runs a deploy command after approval.

The agent itself is ``agent.toml`` + ``prompt.md`` + ``script.json`` in this folder; this
module holds its Python tools, which the file names as ``module:function``."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agent.definition import AgentSpec
from agent.events import Expiry
from agent.tools import Handler
from bot.agents.files import load_agent
from bot.settings import Settings

HERE = Path(__file__).parent
SCRIPT = HERE / "script.json"
"""Canned decisions for running this agent offline with the scripted model."""
OUTPUT_TAIL = 20
"""Lines of the deploy command's output kept for the model and the humans."""


class ListTags(BaseModel):
    """List the repository's git tags, newest first."""

    limit: int = Field(default=10, ge=1, le=100, description="How many tags to return.")


class Deploy(BaseModel):
    """Deploy a tag to an environment. Needs a human's approval."""

    tag: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$", description="An existing git tag.")
    environment: Literal["staging", "production"]


class DeployFailed(RuntimeError):
    """The deploy command exited non-zero; the message holds the tail of its output."""


class DeployTools:
    """The handlers, bound to one repository and one deploy command."""

    def __init__(self, repo: Path, command: str) -> None:
        self.repo = repo
        self.command = command

    @classmethod
    def from_settings(cls, settings: Settings) -> DeployTools:
        return cls(settings.deploy_repo or Path("."), settings.deploy_command)

    def tags(self) -> list[str]:
        completed = subprocess.run(
            ["git", "-C", str(self.repo), "tag", "--list", "--sort=-version:refname"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"git tag failed in {self.repo}: {completed.stderr.strip()}")
        return completed.stdout.split()

    def list_tags(self, arguments: ListTags) -> str:
        tags = self.tags()[: arguments.limit]
        return "\n".join(tags) if tags else f"no tags in {self.repo}"

    def deploy(self, arguments: Deploy) -> str:
        if arguments.tag not in self.tags():
            raise ValueError(f"unknown tag {arguments.tag!r}; call list_tags to see the tags")
        # Substitute after splitting, so a tag can never add words to the command line.
        argv = [
            word.format(tag=arguments.tag, environment=arguments.environment)
            for word in shlex.split(self.command)
        ]
        completed = subprocess.run(
            argv, cwd=self.repo, capture_output=True, text=True, check=False, timeout=900
        )
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-OUTPUT_TAIL:])
        if completed.returncode != 0:
            raise DeployFailed(f"exit status {completed.returncode}: {tail}")
        return f"deployed {arguments.tag} to {arguments.environment}\n{tail}".strip()


def list_tags(arguments: ListTags) -> str:
    """List the git tags, newest first."""
    return DeployTools.from_settings(Settings()).list_tags(arguments)


def deploy(arguments: Deploy) -> str:
    """Deploy a tag to an environment."""
    return DeployTools.from_settings(Settings()).deploy(arguments)


def deploy_agent(
    repo: Path,
    command: str,
    approvers: tuple[str, ...] = (),
    expiry: Expiry | None = None,
    tool_approvers: Mapping[str, tuple[str, ...]] | None = None,
) -> AgentSpec:
    """The agent of this folder bound to one repository and command instead of the settings'.

    ``approvers`` answer the agent's requests; ``tool_approvers`` (by tool name) replace them
    for approving that tool's calls, e.g. only the ops group may approve ``deploy``."""
    spec = load_agent(HERE, Settings(approvers=(), tool_approvers={}, request_ttl=None))
    handlers = DeployTools(repo, command)
    bound: dict[str, Handler] = {"list_tags": handlers.list_tags, "deploy": handlers.deploy}
    per_tool = tool_approvers or {}
    tools = tuple(
        replace(
            tool,
            handler=bound[tool.name],
            policy=replace(tool.policy, approvers=tuple(per_tool.get(tool.name, tool.policy.approvers))),
        )
        for tool in spec.tools
    )
    return replace(spec, tools=tools, approvers=approvers, expiry=expiry)
