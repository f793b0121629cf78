"""The benchmark's agents: the least work an Outerloop thread can do.

``one_step``: the scripted model answers the trigger with ``done_for_now``: the worker's one
step is the model request (the caller records the rest).
``two_steps``: a safe no-op tool first, then ``done_for_now``: a worker's job runs the tool
and asks again, so its difference from ``one_step`` is what running a tool step costs.
``deploy``: the deploy thread of ``python -m bench peer``: list the tags, ask to deploy the
newest, deploy it once approved, finish; its tools do no work, as the peer's nodes do none.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from agent.definition import AgentSpec, Registry
from agent.tools import SAFE, Policy, Tool
from bot.settings import Settings

HERE = Path(__file__).parent


class Nothing(BaseModel):
    """Takes no arguments."""


def do_nothing(arguments: Nothing) -> str:
    return "nothing done"


class Release(BaseModel):
    """The release to deploy."""

    tag: str


TAGS = ("v1.2.0", "v1.1.0", "v1.0.0")


def list_tags(arguments: Nothing) -> str:
    return "\n".join(TAGS)


def deploy(arguments: Release) -> str:
    return f"deployed {arguments.tag}"


def agents(settings: Settings) -> Registry:
    """The registry the benchmark's workers load (``OUTERLOOP_AGENTS=bench.agents:agents``)."""
    # Both offer the same tool, so their model requests are alike and they differ by the step alone.
    tools = (Tool("do_nothing", "Do nothing and say so.", Nothing, do_nothing, SAFE),)
    deploying = (
        Tool("list_tags", "List the release tags, newest first.", Nothing, list_tags, SAFE),
        Tool("deploy", "Deploy a release.", Release, deploy, Policy(needs_approval=True)),
    )
    return Registry(
        [
            *(
                AgentSpec(
                    name=name,
                    description="A benchmark agent that finishes at once.",
                    prompt=HERE / "prompt.md",
                    tools=tools,
                    script=HERE / f"{name}.json",
                )
                for name in ("one_step", "two_steps")
            ),
            AgentSpec(
                name="deploy",
                description="A benchmark agent that deploys the newest tag once a human approves.",
                prompt=HERE / "prompt.md",
                tools=deploying,
                script=HERE / "deploy.json",
            ),
        ]
    )
