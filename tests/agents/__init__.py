"""Agents for runtime tests, loaded by worker processes through ``OUTERLOOP_AGENTS``.

``note`` records each call in Redis and fails loudly if two calls on one thread
ever overlap, which is how the race test sees invariant 4 from outside.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from pydantic import BaseModel

from agent.definition import AgentSpec, Registry
from agent.tools import SAFE, Tool
from bot.agents import bundled_agents
from bot.settings import Settings

HERE = Path(__file__).parent
RUNNING_KEY = "test:note:running"
NOTES_KEY = "test:note:calls"


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


def agents(settings: Settings) -> Registry:
    registry = bundled_agents(settings)
    registry.register(
        AgentSpec(
            name="notes",
            description="It writes down what it is told.",
            prompt=HERE / "notes.md",
            script=HERE / "notes.json",
            tools=(note_tool(settings),),
        )
    )
    return registry
