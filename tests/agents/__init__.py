"""Agents for runtime tests, loaded by worker processes through ``OUTERLOOP_AGENTS``.

``note`` records each call in Redis and fails loudly if two calls on one thread
ever overlap, which is how the race test sees invariant 4 from outside. ``hold`` (agent
``holds``) runs until a test lets it go, so a test can kill a worker in the middle of a job.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from pydantic import BaseModel

from agent.definition import AgentSpec, Registry
from agent.tools import READ_ONLY, SAFE, Tool
from bot.agents import bundled_agents
from bot.settings import Settings

HERE = Path(__file__).parent
RUNNING_KEY = "test:note:running"
NOTES_KEY = "test:note:calls"
RELEASE_KEY = "test:hold:release"
HOLD_LIMIT = 60.0
"""Seconds ``hold`` waits at most, so a forgotten release does not hold a worker for good."""


class Note(BaseModel):
    text: str


def note_tool(settings: Settings) -> Tool:
    connection = redis.Redis.from_url(settings.require_redis_url())

    def note(arguments: Note) -> str:
        if not connection.set(RUNNING_KEY, arguments.text, nx=True, ex=10):
            raise RuntimeError(f"overlap: {connection.get(RUNNING_KEY)!r} was still running")
        try:
            time.sleep(0.02)  # widen the window in which an overlap would show
            connection.rpush(NOTES_KEY, arguments.text)
        finally:
            connection.delete(RUNNING_KEY)
        return f"noted {arguments.text}"

    return Tool("note", "Write a note.", Note, note, SAFE)


def hold_tool(settings: Settings) -> Tool:
    connection = redis.Redis.from_url(settings.require_redis_url())

    def hold(arguments: Note) -> str:
        deadline = time.monotonic() + HOLD_LIMIT
        while not connection.exists(RELEASE_KEY) and time.monotonic() < deadline:
            time.sleep(0.05)
        return f"held {arguments.text}"

    return Tool("hold", "Wait until released.", Note, hold, READ_ONLY)


def agents(settings: Settings) -> Registry:
    registry = bundled_agents(settings)
    for name, description, tool in (
        ("notes", "It writes down what it is told.", note_tool(settings)),
        ("holds", "It waits until it is let go.", hold_tool(settings)),
    ):
        registry.register(
            AgentSpec(
                name=name,
                description=description,
                prompt=HERE / "notes.md",
                script=HERE / "notes.json",
                tools=(tool,),
            )
        )
    return registry
