"""Approving in the console over HTTP: edit then approve (fields from the tool's schema, errors
next to the field, nothing lost), standing scopes only where the policy allows them, quorum
progress, digest binding, separation of duties, and the grants page."""

from __future__ import annotations

import httpx

from agent.approvals import call_digest
from agent.events import HumanResponse, Origin
from bot.runtime import Runtime
from tests.answering import advance_and_answer
from tests.console.conftest import ALICE, CAROL, STANDING, TWO_PERSON, waiting_deploy
from tests.console.helpers import csrf_of


def answer(client: httpx.Client, thread_id: str, **fields: str) -> httpx.Response:
    """Post the thread page's respond form with ``fields`` and the page's own CSRF token."""
    page = client.get(f"/console/threads/{thread_id}")
    return client.post(f"/console/threads/{thread_id}/respond", data={"csrf": csrf_of(page), **fields})


def digest_now(runtime: Runtime, thread_id: str) -> str:
    pending = runtime.load(thread_id).pending
    assert pending is not None and pending.call is not None
    return call_digest(pending.call)


def test_the_edit_form_is_the_tools_schema_prefilled_with_the_proposed_arguments(
    alice: httpx.Client, runtime: Runtime
) -> None:
    thread_id, _ = waiting_deploy(runtime, "deploy v1.1.0 to staging")
    page = alice.get(f"/console/threads/{thread_id}").text
    assert 'name="arg.tag" value="v1.1.0"' in page
    assert 'value="&#34;staging&#34;" selected' in page and 'value="&#34;production&#34;"' in page
    assert f'name="digest" value="{digest_now(runtime, thread_id)}"' in page
    assert 'name="scope"' not in page, "deploy's policy allows no standing approvals"


def test_an_invalid_edit_is_shown_next_to_its_field_and_keeps_what_was_typed(
    alice: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime, "deploy v1.1.0 to staging")
    fields = {"request_id": request_id, "decision": "approve", "edit": "1"}
    refused = answer(
        alice, thread_id, **fields, **{"arg.tag": "no such tag!", "arg.environment": '"production"'}
    )
    assert refused.status_code == 422
    assert 'data-testid="field-error"' in refused.text and "String should match pattern" in refused.text
    assert 'id="arg.tag-error"' in refused.text and 'value="no such tag!"' in refused.text
    assert 'value="&#34;production&#34;" selected' in refused.text, "the other edit was lost"
    assert runtime.load(thread_id).response_to(request_id) is None

    approved = answer(alice, thread_id, **fields, **{"arg.tag": "v1.0.0", "arg.environment": '"production"'})
    assert approved.status_code == 303
    response = runtime.load(thread_id).response_to(request_id)
    assert isinstance(response, HumanResponse)
    assert response.arguments == {"tag": "v1.0.0", "environment": "production"}
    assert (response.responder, response.channel, response.credential) == (ALICE, "console", "console:email")


def test_an_answer_to_arguments_changed_since_the_page_was_shown_is_refused(
    alice: httpx.Client, carol: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime, "deploy v1.1.0 to staging", agent=TWO_PERSON)
    shown = digest_now(runtime, thread_id)
    edited = {"arg.tag": "v1.0.0", "arg.environment": '"staging"'}
    assert (
        answer(carol, thread_id, request_id=request_id, decision="approve", edit="1", **edited).status_code
        == 303
    )
    stale = answer(alice, thread_id, request_id=request_id, decision="approve", digest=shown)
    assert stale.status_code == 409 and "changed since this was shown" in stale.text
    assert runtime.load(thread_id).approvals == (CAROL,)


def test_quorum_progress_names_who_approved_and_the_second_approver_settles_it(
    alice: httpx.Client, carol: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime, "deploy v1.1.0 to staging", agent=TWO_PERSON)
    assert "Needs 2 approvers; none approved yet." in alice.get(f"/console/threads/{thread_id}").text
    digest = digest_now(runtime, thread_id)
    assert (
        answer(alice, thread_id, request_id=request_id, decision="approve", digest=digest).status_code == 303
    )
    page = alice.get(f"/console/threads/{thread_id}").text
    assert f"1 of 2 approved by {ALICE}." in page and "you approved this already" in page
    assert 'value="approve"' not in page, "an approver counted already is offered no second approval"
    assert "Waiting on you (0)" in alice.get("/console/inbox").text
    again = answer(alice, thread_id, request_id=request_id, decision="approve", digest=digest)
    assert again.status_code == 409 and "approved this already" in again.text
    assert (
        answer(carol, thread_id, request_id=request_id, decision="approve", digest=digest).status_code == 303
    )
    assert runtime.load(thread_id).pending is None and runtime.load(thread_id).approved is not None


def test_the_requester_is_offered_no_approval_and_a_forged_one_is_refused(
    alice: httpx.Client, runtime: Runtime
) -> None:
    thread_id = runtime.launch(
        "deploy", "deploy v1.1.0", origin=Origin(channel="web", sender=ALICE)
    ).thread.id
    waiting = advance_and_answer(runtime, thread_id)
    assert waiting is not None and waiting.pending is not None
    page = alice.get(f"/console/threads/{thread_id}").text
    assert "separation of duties" in page and 'value="approve"' not in page
    forged = answer(alice, thread_id, request_id=waiting.pending.request_id, decision="approve")
    assert forged.status_code == 403 and "may not approve it too" in forged.text
    assert runtime.load(thread_id).response_to(waiting.pending.request_id) is None


def test_a_standing_scope_is_offered_only_where_the_policy_allows_it(
    alice: httpx.Client, runtime: Runtime
) -> None:
    plain, request_id = waiting_deploy(runtime, "deploy v1.1.0 to staging")
    as_proposed = {"arg.tag": "v1.1.0", "arg.environment": '"staging"'}
    forged = answer(
        alice, plain, request_id=request_id, decision="approve", edit="1", scope="thread", **as_proposed
    )
    assert forged.status_code == 422 and "does not allow standing approvals" in forged.text
    standing, _ = waiting_deploy(runtime, "deploy v1.1.0 to staging", agent=STANDING)
    page = alice.get(f"/console/threads/{standing}").text
    assert 'name="scope" value="thread"' in page and "Edit or approve for longer" in page
    pending = runtime.load(standing).pending
    assert pending is not None
    no_hours = answer(
        alice, standing, request_id=pending.request_id, decision="approve", edit="1", scope="tool"
    )
    assert no_hours.status_code == 422 and 'id="hours-error"' in no_hours.text


def test_a_standing_approval_is_listed_and_revoked_in_the_console(
    alice: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime, "deploy v1.1.0 to staging", agent=STANDING)
    granted = answer(
        alice,
        thread_id,
        request_id=request_id,
        decision="approve",
        edit="1",
        scope="tool",
        hours="2",
        **{"arg.tag": "v1.1.0", "arg.environment": '"staging"'},
    )
    assert granted.status_code == 303
    [grant] = list(runtime.grants.live())
    assert (grant.scope, grant.by, grant.tool, grant.agent) == ("tool", ALICE, "deploy", STANDING)
    page = alice.get("/console/grants")
    assert grant.grant_id in page.text and "the whole tool" in page.text
    revoked = alice.post(f"/console/grants/{grant.grant_id}/revoke", data={"csrf": csrf_of(page)})
    assert revoked.status_code == 303 and list(runtime.grants.live()) == []
    assert "No standing approvals are live." in alice.get("/console/grants").text
    gone = alice.post(f"/console/grants/{grant.grant_id}/revoke", data={"csrf": csrf_of(page)})
    assert gone.status_code == 404 and "no live standing approval" in gone.text
