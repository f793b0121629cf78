"""``outerloop agents``: list the agents, check that each can run, write a new one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # loading agents imports the kernel; `outerloop --help` does not need it
    from agent.definition import AgentSpec, Registry
    from agent.tools import Policy, Tool

SKELETON_TOML = """\
# The agent {name}: see the README's "Your own agents" for every field.
description = "It answers questions about {name}."

[model]
max_tokens = 4096

# A Python tool: a function named module:function; its parameters are the arguments.
# [[tools]]
# function = "mytools:lookup"
# policy = "read_only"     # or "idempotent", "safe", "needs_approval"

# An MCP server's tools (stdio: command + args; streamable HTTP: url + headers).
# [[mcp]]
# name = "github"
# command = "github-mcp-server"
# args = ["stdio"]
# env = {{ GITHUB_PERSONAL_ACCESS_TOKEN = "${{GITHUB_TOKEN}}" }}
"""
SKELETON_PROMPT = """\
You help people with {name}. Answer the request in plain language with done_for_now.
If something is unclear, ask with request_human_input.
"""
SKELETON_SCRIPT = {
    "rules": [
        {"after": "trigger", "tool": "done_for_now", "arguments": {"message": "You asked: ${trigger}"}},
        {"after": "human_response", "tool": "done_for_now", "arguments": {"message": "Thanks: ${answer}"}},
        {
            "after": "error",
            "tool": "request_human_input",
            "arguments": {"question": "Something went wrong; how should I proceed?"},
        },
    ]
}


def _registry() -> Registry:
    from bot.agents import load_registry
    from bot.settings import Settings

    try:
        return load_registry(Settings())
    except (ValueError, TypeError) as exc:  # a bad agent file or OUTERLOOP_AGENTS: one line
        raise click.ClickException(str(exc)) from exc


def describe(policy: Policy) -> str:
    words = ["needs approval" if policy.needs_approval else "runs unasked"]
    if policy.idempotent:
        words.append("idempotent")
    if policy.approvers:
        words.append(f"approvers {', '.join(policy.approvers)}")
    if policy.needs_approval:
        if policy.min_approvals > 1:
            words.append(f"{policy.min_approvals} distinct approvers")
        if not policy.separate_duties:
            words.append("a requester may approve")
        if policy.standing:
            words.append("standing approvals allowed")
    return ", ".join(words)


@click.group(invoke_without_command=True)
@click.pass_context
def agents(ctx: click.Context) -> None:
    """List the agents with their tools and policies; `check` them; write a `new` one."""
    if ctx.invoked_subcommand is None:
        for spec in _registry():
            click.echo(f"{spec.name}: {spec.description}")
            for tool, source in _tools(spec):
                click.echo(f"  {tool.name:<24} {describe(tool.policy)}{source}")


def _tools(spec: AgentSpec) -> list[tuple[Tool, str]]:
    from agent.definition import AgentCannotRun

    listed = [(tool, "") for tool in spec.tools]
    for toolset in spec.toolsets:
        try:
            listed.extend((tool, f"  (MCP {toolset.name})") for tool in toolset.tools())
        except AgentCannotRun as exc:
            click.echo(f"  ({exc})")
    return listed


@agents.command()
def check() -> None:
    """Load every agent, and reach every model, prompt and MCP server each needs."""
    from agent.definition import AgentCannotRun
    from bot.model.choice import model_for
    from bot.settings import Settings

    settings = Settings()
    failed = 0
    for spec in _registry():
        try:
            model_for(spec, settings)
            spec.ensure_runnable()
        except AgentCannotRun as exc:
            failed += 1
            click.echo(f"FAIL {spec.name}: {exc}")
            continue
        click.echo(f"ok   {spec.name}: {len(spec.all_tools())} tools")
    if failed:
        raise click.ClickException(f"{failed} agent(s) cannot run")


@agents.command()
@click.argument("name")
def new(name: str) -> None:
    """Write a new agent's folder (agent.toml, prompt.md, script.json) that runs without an API key."""
    from bot.agents.files import AGENT_FILE, NAME, PROMPT_FILE, SCRIPT_FILE
    from bot.settings import Settings

    if not NAME.match(name):
        raise click.ClickException(
            f"{name!r} is not a valid agent name: use lowercase letters, digits, - and _"
        )
    folder: Path = Settings().agents_dir / name
    if folder.exists():
        raise click.ClickException(f"{folder} already exists")
    folder.mkdir(parents=True)
    (folder / AGENT_FILE).write_text(SKELETON_TOML.format(name=name), encoding="utf-8")
    (folder / PROMPT_FILE).write_text(SKELETON_PROMPT.format(name=name), encoding="utf-8")
    (folder / SCRIPT_FILE).write_text(json.dumps(SKELETON_SCRIPT, indent=2) + "\n", encoding="utf-8")
    click.echo(f"wrote {folder}/: {AGENT_FILE}, {PROMPT_FILE}, {SCRIPT_FILE}")
