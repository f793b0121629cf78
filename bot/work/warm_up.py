"""Building, before a process takes work, what it would otherwise build on its first job.

A worker or caller that starts cold pays on its first request for the prompt templates,
pydantic's JSON-schema machinery, the bound logger and (a caller) the model SDK: about a
second, more on a busy machine, which the first threads to arrive would wait for. Both
rehearse one model request per agent before they take work; a worker pool does it before
it forks, so every child inherits it.
"""

from __future__ import annotations

import structlog

from agent.asking import model_request, request_for
from agent.definition import AgentCannotRun, Registry
from agent.events import Origin, Trigger
from agent.thread import Thread, reduce

log = structlog.get_logger(__name__)


def rehearse(agents: Registry, process: str) -> list[str]:
    """Render one model request for each agent; returns the agents that can run. An agent
    that cannot is not fatal at start-up: each of its threads fails, saying why."""
    ready = []
    for spec in agents:
        rehearsal = reduce(
            Thread(id="rehearsal", agent=spec.name),
            Trigger(text="rehearsal", origin=Origin(channel=process, sender=process)),
        )
        try:
            spec.ensure_runnable()
            model_request(rehearsal, spec, request_for(rehearsal, spec))
        except AgentCannotRun as exc:
            log.warning(f"{process}.agent_cannot_run", agent=spec.name, reason=str(exc))
            continue
        ready.append(spec.name)
    return ready
