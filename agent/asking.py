"""Asking the model: the request a thread records, rendered again from its log, and the answer.

A worker never waits on a model. It records a ``model_requested`` event and lets go; a caller
process renders the request from the log with the same code as here, asks the model, and
records the answer as ``model_decided`` (or a model ``error``). Run in-process with a model
at hand (``agent.loop.advance``), the loop does the same in one go, so a thread's log has the
same shape however it was advanced.
"""

from __future__ import annotations

import hashlib
import json
import time

from agent.context import system_prompt, user_prompt
from agent.definition import AgentSpec
from agent.events import Error, ModelDecided, ModelRequested, new_id
from agent.model import Model, ModelCall, ModelError, ModelRequest
from agent.thread import Thread, replay


def agent_version(agent: AgentSpec) -> str:
    """A short hash of what the model is shown besides the thread: the system prompt and tools."""
    tools = json.dumps([tool.schema() for tool in agent.all_tools()], sort_keys=True)
    return hashlib.sha256(f"{system_prompt(agent)}\0{tools}".encode()).hexdigest()[:16]


def request_for(thread: Thread, agent: AgentSpec) -> ModelRequested:
    """The request for the next step of ``thread``: the model sees every event so far."""
    return ModelRequested(
        request_id=new_id(), agent=agent.name, version=agent_version(agent), basis=len(thread.events)
    )


def model_request(thread: Thread, agent: AgentSpec, requested: ModelRequested) -> ModelRequest:
    """The request ``requested`` as the model sees it: the thread's first ``basis`` events
    rendered with the agent's prompt and tools. Events recorded after it (a message that
    arrived meanwhile) wait for the next request."""
    seen = thread
    if len(thread.events) > requested.basis + 1:
        seen = replay(thread.id, thread.agent, thread.events[: requested.basis])
    return ModelRequest(
        system=system_prompt(agent),
        context=user_prompt(seen, agent.context_budget),
        tools=[tool.schema() for tool in agent.all_tools()],
        thread=seen,
    )


def decision(requested: ModelRequested, call: ModelCall, latency: float) -> ModelDecided:
    """The event that records the model's answer ``call`` to ``requested``."""
    return ModelDecided(
        request_id=requested.request_id,
        basis=requested.basis,
        tool=call.tool,
        arguments=call.arguments,
        model=call.model,
        stop_reason=call.stop_reason,
        usage=call.usage,
        latency=round(latency, 3),
    )


def model_error(requested: ModelRequested, exc: ModelError) -> Error:
    """The event that records that the model gave no usable answer to ``requested`` (factor 9)."""
    return Error(source="model", message=str(exc), request_id=requested.request_id)


def decide(thread: Thread, agent: AgentSpec, model: Model) -> ModelDecided | Error:
    """Ask ``model`` the request ``thread`` waits on, in this process."""
    requested = thread.deciding
    if requested is None:
        raise ValueError(f"thread {thread.id} has no model request to answer")
    started = time.monotonic()
    try:
        call = model.decide(model_request(thread, agent, requested))
    except ModelError as exc:
        return model_error(requested, exc)
    return decision(requested, call, time.monotonic() - started)
