"""Approving in a real browser (Debian's Chromium under Playwright) against ``outerloop web``, a
worker and Redis: edit then approve (a bad value is shown beside its field, a good one runs the
deploy once with the edited arguments), a standing approval that lets a later call run without
asking, the requester offered no approval and refused a forged one, and a stale page refused.
(``python -m tests.console.screenshots`` photographs the same pages for the README.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from agent.events import HumanResponse, Origin
from bot.runtime import Runtime
from bot.settings import Settings
from tests.answering import advance_and_answer
from tests.console.conftest import ALICE, CAROL, STANDING, TWO_PERSON
from tests.console.stack import CHROMIUM, Stack, console_stack, signed_in_page
from tests.services import wait_for

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")


@pytest.fixture
def stack(env: dict[str, str], settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    with console_stack(env, settings, tmp_path / "processes.log") as running:
        yield running


def waiting(runtime: Runtime, agent: str, text: str, sender: str = "api") -> str:
    """A thread of ``agent`` waiting for approval, advanced in this process (no worker yet)."""
    thread_id = runtime.launch(agent, text, origin=Origin(channel="web", sender=sender)).thread.id
    thread = advance_and_answer(runtime, thread_id)
    assert thread is not None and thread.pending is not None
    return thread_id


def deploys(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_an_approver_edits_a_bad_value_sees_why_then_approves_and_the_edit_runs_once(
    stack: Stack, deploy_log: Path
) -> None:
    url, pool, browser, runtime = stack.url, stack.pool, stack.browser, stack.runtime
    thread_id = waiting(runtime, "deploy", "deploy v1.1.0 to staging")
    alice = signed_in_page(browser, runtime, ALICE)
    alice.goto(f"{url}/console/threads/{thread_id}")
    alice.get_by_text("Edit, then approve").click()
    expect(alice.get_by_label("Tag")).to_have_value("v1.1.0")
    alice.get_by_label("Tag").fill("v1.0.0; rm -rf /")
    alice.get_by_label("Environment").select_option(label="production")
    alice.get_by_role("button", name="Approve as edited").click()

    expect(alice.locator("#arg\\.tag-error")).to_contain_text("String should match pattern")
    expect(alice.get_by_label("Tag")).to_have_value("v1.0.0; rm -rf /")
    expect(alice.get_by_label("Environment")).to_have_value('"production"')
    assert runtime.load(thread_id).pending is not None, "a refused edit recorded something"

    alice.get_by_label("Tag").fill("v1.0.0")
    alice.get_by_role("button", name="Approve as edited").click()
    expect(alice.get_by_test_id("status")).to_have_text("running")
    pool.start(1)
    expect(alice.get_by_test_id("status")).to_have_text("done", timeout=30_000)
    expect(alice.get_by_test_id("timeline")).to_contain_text(
        f'{ALICE} approved with arguments {{"environment": "production", "tag": "v1.0.0"}}'
    )
    assert deploys(deploy_log) == ["v1.0.0 production"]


def test_a_standing_approval_for_the_tool_lets_the_next_call_run_without_asking(
    stack: Stack, deploy_log: Path
) -> None:
    url, pool, browser, runtime = stack.url, stack.pool, stack.browser, stack.runtime
    first = waiting(runtime, STANDING, "deploy v1.1.0 to staging")
    alice = signed_in_page(browser, runtime, ALICE)
    alice.goto(f"{url}/console/threads/{first}")
    alice.get_by_text("Edit or approve for longer").click()
    alice.get_by_label(re.compile("Every call of this tool by this agent")).check()
    alice.get_by_label(re.compile("For how many hours")).fill("2")
    alice.get_by_role("button", name="Approve as edited").click()
    expect(alice.get_by_test_id("status")).to_have_text("running")

    pool.start(1)
    wait_for(lambda: runtime.load(first).status == "done", "the first deploy", timeout=30)
    second = runtime.launch(STANDING, "deploy v1.0.0 to staging").thread.id
    wait_for(lambda: runtime.load(second).status == "done", "the second deploy, unasked", timeout=30)
    stood = [e for e in runtime.load(second).events if isinstance(e, HumanResponse)]
    assert [(r.channel, r.responder, r.under is not None) for r in stood] == [("grant", ALICE, True)]
    assert deploys(deploy_log) == ["v1.1.0 staging", "v1.0.0 staging"]

    alice.goto(f"{url}/console/grants")
    grant = alice.get_by_test_id("grant")
    expect(grant).to_contain_text("the whole tool")
    alice.on("dialog", lambda dialog: dialog.accept())
    grant.get_by_role("button", name="Revoke").click()
    expect(alice.get_by_text("No standing approvals are live.")).to_be_visible()
    third = runtime.launch(STANDING, "deploy v1.0.0 to production").thread.id
    wait_for(lambda: runtime.load(third).pending, "the third deploy to ask again", timeout=30)


def test_the_requester_sees_no_approve_and_a_forged_approval_is_refused(stack: Stack) -> None:
    url, browser, runtime = stack.url, stack.browser, stack.runtime
    thread_id = waiting(runtime, "deploy", "deploy v1.1.0 to staging", sender=ALICE)
    alice = signed_in_page(browser, runtime, ALICE)
    alice.goto(f"{url}/console/threads/{thread_id}")
    expect(alice.get_by_test_id("not-yours")).to_contain_text("separation of duties")
    expect(alice.get_by_role("button", name="Approve")).to_have_count(0)

    pending = runtime.load(thread_id).pending
    assert pending is not None
    csrf = alice.locator('input[name="csrf"]').first.get_attribute("value") or ""
    forged = alice.request.post(
        f"{url}/console/threads/{thread_id}/respond",
        form={"csrf": csrf, "request_id": pending.request_id, "decision": "approve"},
    )
    assert forged.status == 403 and "separation of duties" in forged.text()
    assert runtime.load(thread_id).response_to(pending.request_id) is None


def test_a_page_showing_arguments_since_changed_is_refused_and_a_live_page_shows_the_change(
    stack: Stack,
) -> None:
    url, browser, runtime = stack.url, stack.browser, stack.runtime
    thread_id = waiting(runtime, TWO_PERSON, "deploy v1.1.0 to staging")
    stale = browser.new_context(java_script_enabled=False).new_page()
    live = signed_in_page(browser, runtime, ALICE)
    stale.context.add_cookies(live.context.cookies())
    for page in (stale, live):
        page.goto(f"{url}/console/threads/{thread_id}")
        expect(page.get_by_test_id("progress")).to_have_text("Needs 2 approvers; none approved yet.")
    expect(live.locator("body[data-live-ready]")).to_have_count(1)

    pending = runtime.load(thread_id).pending
    assert pending is not None
    runtime.respond(
        thread_id,
        pending.request_id,
        CAROL,
        approved=True,
        arguments={"tag": "v1.0.0", "environment": "staging"},
    )
    expect(live.get_by_test_id("progress")).to_contain_text(f"1 of 2 approved by {CAROL}.")
    expect(live.get_by_test_id("progress")).to_contain_text("An approver changed the arguments")

    stale.get_by_role("button", name="Approve", exact=True).click()
    expect(stale.get_by_test_id("error")).to_contain_text("changed since this was shown")
    assert runtime.load(thread_id).approvals == (CAROL,)
