"""The Outerloop agent kernel: events, the pure reducer, context rendering, tools and the loop.

Nothing here touches Redis, Slack or SMTP; the only I/O is the model call and the
tool handlers an agent brings.
"""

from agent.definition import AgentSpec, Registry, UnknownAgent
from agent.events import Event, Origin, new_id
from agent.loop import advance, judge, step
from agent.model import Model, ModelCall, ModelError, ModelOutputInvalid, ModelRequest, ModelUnavailable
from agent.thread import Status, Thread, fork, reduce, replay
from agent.tools import NEEDS_APPROVAL, READ_ONLY, SAFE, Policy, Tool

__all__ = [
    "NEEDS_APPROVAL",
    "READ_ONLY",
    "SAFE",
    "AgentSpec",
    "Event",
    "Model",
    "ModelCall",
    "ModelError",
    "ModelOutputInvalid",
    "ModelRequest",
    "ModelUnavailable",
    "Origin",
    "Policy",
    "Registry",
    "Status",
    "Thread",
    "Tool",
    "UnknownAgent",
    "advance",
    "fork",
    "judge",
    "new_id",
    "reduce",
    "replay",
    "step",
]
