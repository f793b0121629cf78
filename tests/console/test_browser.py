"""The console in a real browser (Debian's Chromium under Playwright) against ``outerloop web``,
a worker and Redis: sign in, find the approval in the inbox, approve, and watch the timeline
reach done without reloading; someone who is not an approver sees the request but cannot answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bot.settings import Settings
from tests.answering import advance_and_answer
from tests.console.conftest import ALICE, BOB
from tests.console.stack import CHROMIUM, console_stack, signed_in_page

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)")


def test_an_approver_approves_in_the_browser_and_watches_the_thread_finish_live(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    with console_stack(env, settings, tmp_path / "processes.log") as stack:
        url, pool, browser, runtime = stack.url, stack.pool, stack.browser, stack.runtime
        thread_id = runtime.launch("deploy", "deploy the latest tag to production").thread.id
        advance_and_answer(runtime, thread_id)  # no worker yet: the thread waits, and stays put

        bob = signed_in_page(browser, runtime, BOB)
        bob.goto(f"{url}/console/threads/{thread_id}")
        expect(bob.get_by_test_id("not-yours")).to_be_visible()
        expect(bob.get_by_role("button", name="Approve")).to_have_count(0)

        alice = signed_in_page(browser, runtime, ALICE)
        waiting = alice.get_by_test_id("waiting").filter(has_text=thread_id)
        expect(waiting).to_contain_text("deploy")
        waiting.get_by_role("link").click()
        alice.get_by_role("button", name="Approve").click()
        expect(alice.get_by_test_id("status")).to_have_text("running")
        expect(alice.locator("body[data-live-ready]")).to_have_count(1)
        alice.evaluate("window.notReloaded = true")

        pool.start(1)  # a worker: the approved deploy runs and the thread finishes
        expect(alice.get_by_test_id("status")).to_have_text("done", timeout=30_000)
        expect(alice.get_by_test_id("timeline")).to_contain_text(re.compile(f"{ALICE} approved"))
        assert alice.evaluate("window.notReloaded") is True
        expect(bob.get_by_test_id("status")).to_have_text("done")


def test_a_thread_fits_a_phone_and_answers_to_the_keyboard(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    with console_stack(env, settings, tmp_path / "processes.log") as stack:
        url, browser, runtime = stack.url, stack.browser, stack.runtime
        thread_id = runtime.launch("deploy", "deploy the latest tag").thread.id
        advance_and_answer(runtime, thread_id)
        phone = signed_in_page(browser, runtime, ALICE, width=390)
        phone.goto(f"{url}/console/threads/{thread_id}")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.keyboard.press("Tab")
        expect(phone.get_by_role("link", name="Skip to content")).to_be_focused()
        approve = phone.get_by_role("button", name="Approve")
        approve.focus()
        phone.keyboard.press("Enter")
        expect(phone.get_by_test_id("timeline")).to_contain_text(f"{ALICE} approved")
