"""Approvals through the runtime and the HTTP API, on a real Redis: quorum, separation of duties,
digest binding, edits, standing approvals across threads, revocation, and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.approvals import Standing, call_digest
from agent.events import HumanRequest, Origin, ProposedCall, Trigger, new_id
from agent.loop import approval_request
from agent.thread import Thread
from agent.tools import Policy
from bot.runtime import Runtime
from bot.web.api_tokens import ApiTokens
from bot.web.app import create_app
from channels.gateway import Conflict, NotAllowed
from tests.kernel_helpers import CountingTool, Launch, make_spec
from tests.services import serve

STANDING = CountingTool("launch", Policy(needs_approval=True, standing=True), Launch)
TWO_PERSON = CountingTool("wipe", Policy(needs_approval=True, min_approvals=2), Launch)


@pytest.fixture
def rt(runtime: Runtime, tmp_path: Path) -> Runtime:
    spec = make_spec(tmp_path, STANDING, TWO_PERSON)
    runtime.agents.register(spec.__class__(**{**vars(spec), "approvers": ()}))
    return runtime


def asking(
    rt: Runtime, tool: CountingTool, sender: str = "rita", target: str = "alpha"
) -> tuple[Thread, HumanRequest]:
    """A thread started by ``sender`` whose agent asks to run ``tool`` (as the worker records it)."""
    trigger = Trigger(text="please", origin=Origin(channel="api", sender=sender))
    thread = rt.store.create(new_id(), "test", trigger).thread
    call = ProposedCall(call_id=new_id(), tool=tool.name, arguments={"target": target})
    request = approval_request(rt.agents.get("test"), tool.tool, call, "ok?", thread)
    return rt.record(thread, request).thread, request


def test_a_two_person_call_waits_for_a_second_distinct_approver(rt: Runtime) -> None:
    thread, request = asking(rt, TWO_PERSON)
    rt.respond(thread.id, request.request_id, "alice", approved=True)
    with pytest.raises(Conflict, match="approved this already; it waits for 1 more"):
        rt.respond(thread.id, request.request_id, "alice", approved=True)
    assert rt.load(thread.id).pending is not None
    done = rt.respond(thread.id, request.request_id, "bob", approved=True).thread
    assert done.pending is None and done.approved == request.call


def test_the_requester_is_refused_with_the_reason(rt: Runtime) -> None:
    thread, request = asking(rt, STANDING, sender="alice")
    with pytest.raises(NotAllowed, match="separation of duties"):
        rt.respond(thread.id, request.request_id, "alice", approved=True)


def test_an_approval_of_arguments_that_changed_is_refused(rt: Runtime) -> None:
    thread, request = asking(rt, TWO_PERSON)
    assert request.call is not None
    shown = call_digest(request.call)
    rt.respond(thread.id, request.request_id, "alice", approved=True, arguments={"target": "beta"})
    with pytest.raises(Conflict, match="changed since this was shown"):
        rt.respond(thread.id, request.request_id, "bob", approved=True, digest=shown)


def test_edited_arguments_are_checked_against_the_tool_and_recorded(rt: Runtime) -> None:
    thread, request = asking(rt, STANDING)
    with pytest.raises(ValueError, match="invalid arguments for launch"):
        rt.respond(thread.id, request.request_id, "alice", approved=True, arguments={"target": "gamma"})
    done = rt.respond(
        thread.id, request.request_id, "alice", approved=True, arguments={"target": "beta"}
    ).thread
    assert done.approved is not None and done.approved.arguments == {"target": "beta"}
    assert request.call is not None and request.call.arguments == {"target": "alpha"}, (
        "the log keeps the original"
    )


def test_a_standing_approval_for_a_tool_covers_calls_in_other_threads_until_revoked(rt: Runtime) -> None:
    thread, request = asking(rt, STANDING)
    rt.respond(thread.id, request.request_id, "alice", approved=True, standing=Standing("tool", 2))
    (grant,) = rt.grants.live()
    assert (grant.scope, grant.by, grant.tool) == ("tool", "alice", "launch")

    other, _ = asking(rt, STANDING, sender="bob", target="beta")
    assert other.pending is None and other.approved is not None, "ran without asking"
    assert other.events[-1].under == grant and other.events[-1].channel == "grant"  # type: ignore[union-attr]

    mine, _ = asking(rt, STANDING, sender="alice")
    assert mine.pending is not None, "a grant does not approve its giver's own request"

    rt.revoke(grant.grant_id, "carol")
    assert list(rt.grants.live()) == []
    later, _ = asking(rt, STANDING, sender="bob")
    assert later.pending is not None, "a revoked grant covers nothing"


def test_standing_approvals_are_refused_when_the_policy_does_not_allow_them(rt: Runtime) -> None:
    thread, request = asking(rt, TWO_PERSON)
    with pytest.raises(ValueError, match="does not allow standing approvals"):
        rt.respond(thread.id, request.request_id, "alice", approved=True, standing=Standing("thread"))


@pytest.fixture
def api(rt: Runtime) -> Iterator[httpx.Client]:
    with serve(create_app(rt)) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_grants_and_audit_over_http(rt: Runtime, api: httpx.Client) -> None:
    _, secret = ApiTokens(rt.connection).create("alice@example.com")
    alice = {"Authorization": f"Bearer {secret}"}
    thread, request = asking(rt, STANDING)
    assert request.call is not None
    body = {
        "request_id": request.request_id,
        "approved": True,
        "digest": call_digest(request.call),
        "arguments": {"target": "beta"},
        "scope": "thread",
    }
    assert api.post(f"/threads/{thread.id}/responses", headers=alice, json=body).status_code == 202
    grants = api.get("/grants", headers=alice).json()
    assert [(g["scope"], g["by"]) for g in grants] == [("thread", "alice@example.com")]

    trail = api.get("/audit", params={"since": "1h"}, headers=alice).json()
    assert trail[-1]["by"] == "alice@example.com" and trail[-1]["channel"] == "api"
    assert trail[-1]["arguments"] == {"target": "beta"} and trail[-1]["gives"]["scope"] == "thread"
    assert trail[-1]["digest"] == call_digest(request.call)

    assert api.delete(f"/grants/{grants[0]['grant_id']}", headers=alice).status_code == 200
    assert api.get("/grants", headers=alice).json() == []
    assert api.get("/audit", headers=alice).json()[-1]["decision"] == "revoked"
    assert api.delete(f"/grants/{grants[0]['grant_id']}", headers=alice).status_code == 404
    assert api.get("/audit", params={"since": "soon"}, headers=alice).status_code == 422
    assert api.get("/audit").status_code == 401
