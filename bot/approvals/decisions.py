"""Whether an answer may be recorded now, and in what form (invariants 6 and 7).

Every door hands ``Runtime.respond`` what a person said; ``checked`` compares it with the
thread as stored and either refuses it with a reason the person can act on, or returns the
``HumanResponse`` to append: bound to the digest of the arguments it decides on, with
edited arguments validated against the tool's model, and any standing approval it gives
filled in. The runtime appends it only if the log is still the one checked here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agent.approvals import Standing, call_digest, excluded, grant_fits, may_answer
from agent.definition import AgentSpec
from agent.events import Grant, HumanRequest, HumanResponse, ProposedCall
from agent.thread import Thread
from channels.gateway import Conflict, NotAllowed

MAX_GRANT_HOURS = 24 * 30
"""The longest a standing approval for a whole tool may last."""


def checked(
    thread: Thread, agent: AgentSpec, response: HumanResponse, standing: Standing | None, now: datetime
) -> HumanResponse:
    """``response`` as it may be recorded, if its responder may answer its request now; raises
    ``LookupError``, ``NotAllowed``, ``Conflict`` or ``ValueError`` otherwise."""
    request_id, responder = response.request_id, response.responder
    request = thread.request(request_id)
    if request is None:
        raise LookupError(f"thread {thread.id} has no request {request_id!r}")
    # Who may answer comes first, so a stranger learns nothing about who answered.
    if not may_answer(request, responder, response.via):
        raise NotAllowed(
            f"{responder} may not answer this request; approvers: {', '.join(request.approvers)}"
        )
    settled = thread.response_to(request_id)
    if settled is not None:
        decision = {True: "approved", False: "rejected", None: "answered"}[settled.approved]
        raise Conflict(f"request {request_id} was already answered by {settled.responder} ({decision})")
    if thread.pending is None or thread.pending.request_id != request_id:
        raise Conflict(f"request {request_id} is no longer pending")
    if request.kind == "question":
        if not (response.answer or response.comment):
            raise ValueError("a question needs an answer")
        if response.arguments is not None or standing is not None:
            raise ValueError("a question is answered with text, not arguments or a standing scope")
        return response.model_copy(update={"approved": None})
    return _checked_approval(thread, thread.pending, agent, response, standing, now)


def _checked_approval(
    thread: Thread,
    pending: HumanRequest,
    agent: AgentSpec,
    response: HumanResponse,
    standing: Standing | None,
    now: datetime,
) -> HumanResponse:
    if response.approved is None:
        raise ValueError("an approval request needs approved: true or false")
    call = pending.call
    if call is None:
        return response
    current = call_digest(call)
    if response.digest is not None and response.digest != current:
        raise Conflict(
            f"the arguments of {call.tool} changed since this was shown (digest {response.digest}, now "
            f"{current}); look at the request again and answer that: nothing was recorded"
        )
    response = response.model_copy(update={"digest": current})
    if not response.approved:
        if response.arguments is not None or standing is not None:
            raise ValueError("a rejection takes a reason, not arguments or a standing scope")
        return response
    if excluded(pending, response.responder):
        raise NotAllowed(
            f"{response.responder} asked for this call (started the thread or wrote the message that "
            "led to it) and may not approve it too: another approver must (separation of duties)"
        )
    if response.arguments is None and response.responder in thread.approvals:
        waiting = pending.quorum - len(thread.approvals)
        raise Conflict(f"{response.responder} approved this already; it waits for {waiting} more approver(s)")
    arguments = _edited(agent, call, response.arguments)
    edited = arguments if arguments is not None and arguments != call.arguments else None
    approved = call if edited is None else call.model_copy(update={"arguments": edited})
    gives = _grant(thread, pending, approved, response, standing, now)
    return response.model_copy(update={"arguments": edited, "gives": gives})


def _edited(agent: AgentSpec, call: ProposedCall, arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """Edited arguments as the tool's model validates and normalizes them; raises ``ValueError``."""
    if arguments is None:
        return None
    tool = agent.tool(call.tool)
    if tool is None:
        raise ValueError(
            f"agent {agent.name} has no tool {call.tool!r} to check the edited arguments against"
        )
    return tool.validate(arguments).model_dump(mode="json")


def _grant(
    thread: Thread,
    pending: HumanRequest,
    call: ProposedCall,
    response: HumanResponse,
    standing: Standing | None,
    now: datetime,
) -> Grant | None:
    if standing is None:
        return None
    if not pending.standing:
        raise ValueError(
            f"the policy of {call.tool} does not allow standing approvals: approve this call alone"
        )
    if standing.hours is not None and not 0 < standing.hours <= MAX_GRANT_HOURS:
        raise ValueError(f"a standing approval lasts more than 0 and at most {MAX_GRANT_HOURS} hours")
    grant = Grant(
        scope=standing.scope,
        agent=thread.agent,
        tool=call.tool,
        thread=thread.id,
        by=response.responder,
        via=response.via,
        digest=call_digest(call) if standing.scope == "call" else None,
        until=now + timedelta(hours=standing.hours) if standing.hours is not None else None,
    )
    problem = grant_fits(grant, call, response.responder, response.via)
    if problem is not None:
        raise ValueError(problem)
    return grant
