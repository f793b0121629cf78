"""Regenerate the README's console screenshots from a real run: ``python -m tests.console.screenshots``.

It starts a private redis-server, ``outerloop web`` and a worker, makes a few deploy threads
(one done, two waiting for approval), and photographs the inbox, a finished thread and a
waiting thread at phone width with Debian's Chromium, into ``tests/console/images/`` (the top
level of the repository is fixed). Then approvals: an edit the tool refuses, a standing
approval being given and the grants page, and a call half-way to its two approvers.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, expect

from bot.runtime import Runtime
from bot.settings import Settings
from tests.console.conftest import ALICE, CAROL, STANDING, TWO_PERSON
from tests.console.stack import chromium, console_processes, signed_in_page
from tests.file_agents import shipper
from tests.services import REPO, RedisServer, outerloop_env, tagged_repo, wait_for

DOCS = REPO / "tests" / "console" / "images"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "redis").mkdir()
        redis_server = RedisServer(work / "redis", durable=False)
        redis_server.start()
        try:
            photograph(work, redis_server.url)
        finally:
            redis_server.stop()


def photograph(work: Path, redis_url: str) -> None:
    env = outerloop_env(redis_url, tagged_repo(work / "repo"), "echo deploying {tag} to {environment}")
    agents = shipper(work / "agents", "min_approvals = 2", TWO_PERSON)
    shipper(agents, "standing = true", STANDING)
    env |= {
        "OUTERLOOP_AGENTS": "bot.agents:bundled_agents",
        "OUTERLOOP_APPROVERS": f"{ALICE},U0BOSS,{CAROL}",
        "OUTERLOOP_AGENTS_DIR": str(agents),
    }
    os.environ.update(env)
    with console_processes(env, work / "processes.log") as (url, pool), chromium() as browser:
        settings = Settings()
        settings.console_url = url
        runtime = Runtime.from_settings(settings)
        pool.start(1)
        finished = waiting(runtime, "deploy the latest tag to staging")
        pending = runtime.load(finished).pending
        assert pending is not None
        runtime.respond(finished, pending.request_id, ALICE, approved=True, credential="console:slack")
        wait_for(lambda: runtime.load(finished).status == "done", "the first deploy to finish", timeout=60)
        first = waiting(runtime, "deploy v1.1.0 to production, please")
        waiting(runtime, "roll staging back to v1.0.0")

        DOCS.mkdir(exist_ok=True)
        page = signed_in_page(browser, runtime, ALICE, width=1000)
        page.screenshot(path=DOCS / "console-inbox.png")
        page.goto(f"{url}/console/threads/{finished}")
        expect(page.get_by_test_id("status")).to_have_text("done")
        page.screenshot(path=DOCS / "console-thread.png", full_page=True)
        phone = signed_in_page(browser, runtime, ALICE, width=390)
        phone.goto(f"{url}/console/threads/{first}")
        expect(phone.get_by_role("button", name="Approve")).to_be_visible()
        phone.screenshot(path=DOCS / "console-phone.png")
        photograph_approvals(browser, runtime, url)
    print(
        "wrote", *sorted(str(path.relative_to(REPO)) for path in DOCS.glob("console-*.png")), file=sys.stderr
    )


def photograph_approvals(browser: Browser, runtime: Runtime, url: str) -> None:
    page = signed_in_page(browser, runtime, ALICE, width=1000)
    page.goto(f"{url}/console/threads/{waiting(runtime, 'deploy v1.1.0 to staging')}")
    page.get_by_text("Edit, then approve").click()
    page.get_by_label("Tag").fill("v1.0.0; rm -rf /")
    page.get_by_role("button", name="Approve as edited").click()
    expect(page.locator("#arg\\.tag-error")).to_be_visible()
    page.screenshot(path=DOCS / "console-edit-error.png")

    page.goto(f"{url}/console/threads/{waiting(runtime, 'deploy v1.1.0 to staging', STANDING)}")
    page.get_by_text("Edit or approve for longer").click()
    page.get_by_label("Every call of this tool by this agent", exact=False).check()
    page.get_by_label("For how many hours", exact=False).fill("8")
    page.get_by_text("Edit or approve for longer").scroll_into_view_if_needed()
    page.screenshot(path=DOCS / "console-standing.png")
    page.get_by_role("button", name="Approve as edited").click()
    page.goto(f"{url}/console/grants")
    expect(page.get_by_test_id("grant")).to_be_visible()
    page.screenshot(path=DOCS / "console-grants.png")

    two = waiting(runtime, "deploy v1.1.0 to production", TWO_PERSON)
    pending = runtime.load(two).pending
    assert pending is not None
    edit = {"tag": "v1.0.0", "environment": "production"}
    runtime.respond(two, pending.request_id, CAROL, approved=True, arguments=edit, credential="console:email")
    page.goto(f"{url}/console/threads/{two}")
    expect(page.get_by_test_id("progress")).to_contain_text("1 of 2 approved")
    page.screenshot(path=DOCS / "console-quorum.png")


def waiting(runtime: Runtime, text: str, agent: str = "deploy") -> str:
    thread_id = runtime.launch(agent, text).thread.id
    wait_for(lambda: runtime.load(thread_id).pending, f"{text!r} to wait for approval", timeout=60)
    return thread_id


if __name__ == "__main__":
    main()
