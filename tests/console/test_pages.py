"""The console over plain HTTP: sessions, CSRF, sign-in links, and answering as the signed-in person."""

from __future__ import annotations

import httpx

from agent.events import HumanResponse
from bot.console.links import create_link
from bot.runtime import Runtime
from tests.console.conftest import ALICE, BOB, waiting_deploy
from tests.console.helpers import csrf_of, post_form


def test_pages_send_a_browser_that_is_not_signed_in_to_sign_in(anonymous: httpx.Client) -> None:
    for path in ("/", "/console/inbox", "/console/threads", "/console/launch", "/console/threads/x"):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/signin", path
    assert "Sign in" in anonymous.get("/console/signin").text


def test_the_session_cookie_is_signed_http_only_and_same_site(
    anonymous: httpx.Client, runtime: Runtime
) -> None:
    link = create_link(runtime.connection, runtime.settings, ALICE)
    page = anonymous.get(link)
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    answer = anonymous.post("/console/signin/link", data={"csrf": csrf_of(page), "token": link.split("=")[1]})
    assert answer.status_code == 303
    assert ALICE in anonymous.get("/console/inbox").text


def test_a_forged_cookie_is_no_session(anonymous: httpx.Client) -> None:
    anonymous.cookies.set("outerloop_session", "made-up.value")
    assert anonymous.get("/console/inbox").status_code == 303


def test_a_sign_in_link_works_once(anonymous: httpx.Client, runtime: Runtime) -> None:
    link = create_link(runtime.connection, runtime.settings, ALICE)
    token = link.split("=")[1]
    page = anonymous.get(link)
    assert (
        anonymous.post("/console/signin/link", data={"csrf": csrf_of(page), "token": token}).status_code
        == 303
    )
    again = post_form(anonymous, "/console/signin", "/console/signin/link", token=token)
    assert again.status_code == 403 and "unknown, was used already or has expired" in again.text


def test_a_sign_in_form_without_its_csrf_token_is_refused(anonymous: httpx.Client, runtime: Runtime) -> None:
    link = create_link(runtime.connection, runtime.settings, ALICE)
    anonymous.get(link)
    answer = anonymous.post("/console/signin/link", data={"token": link.split("=")[1]})
    assert answer.status_code == 403 and "Form refused" in answer.text
    assert anonymous.get("/console/inbox").status_code == 303


def test_forms_posted_with_another_sessions_token_are_refused(
    alice: httpx.Client, bob: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime)
    bobs_token = csrf_of(bob.get(f"/console/threads/{thread_id}"))
    answer = alice.post(
        f"/console/threads/{thread_id}/respond",
        data={"csrf": bobs_token, "request_id": request_id, "decision": "approve"},
    )
    assert answer.status_code == 403
    assert runtime.load(thread_id).pending is not None


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(
    alice: httpx.Client, base_url: str
) -> None:
    copied = httpx.Client(base_url=base_url, cookies=dict(alice.cookies))
    assert copied.get("/console/inbox").status_code == 200
    assert post_form(alice, "/console/inbox", "/console/signout").status_code == 303
    assert alice.get("/console/inbox").status_code == 303
    assert copied.get("/console/inbox").status_code == 303
    copied.close()


def test_an_approver_approves_and_the_answer_names_them_and_the_console(
    alice: httpx.Client, runtime: Runtime
) -> None:
    thread_id, request_id = waiting_deploy(runtime)
    page = alice.get(f"/console/threads/{thread_id}")
    assert "Approve" in page.text
    answer = alice.post(
        f"/console/threads/{thread_id}/respond",
        data={"csrf": csrf_of(page), "request_id": request_id, "decision": "approve"},
    )
    assert answer.status_code == 303
    response = runtime.load(thread_id).response_to(request_id)
    assert isinstance(response, HumanResponse)
    assert (response.responder, response.approved, response.credential) == (ALICE, True, "console:email")


def test_a_non_approver_sees_the_request_but_cannot_answer_it(bob: httpx.Client, runtime: Runtime) -> None:
    thread_id, request_id = waiting_deploy(runtime)
    page = bob.get(f"/console/threads/{thread_id}")
    assert 'data-testid="not-yours"' in page.text and 'value="approve"' not in page.text
    answer = bob.post(
        f"/console/threads/{thread_id}/respond",
        data={"csrf": csrf_of(page), "request_id": request_id, "decision": "approve"},
    )
    assert answer.status_code == 403 and "may not answer this request" in answer.text
    assert runtime.load(thread_id).pending is not None
    inbox = bob.get("/console/inbox").text
    assert "Waiting on you (0)" in inbox and "Waiting on others (1)" in inbox


def test_the_inbox_lists_what_waits_on_me_oldest_first(alice: httpx.Client, runtime: Runtime) -> None:
    first, _ = waiting_deploy(runtime, "ship the first")
    second, _ = waiting_deploy(runtime, "ship the second")
    inbox = alice.get("/console/inbox").text
    assert "Waiting on you (2)" in inbox
    assert inbox.index(first) < inbox.index(second)
    assert "waited" in inbox and "no expiry" in inbox


def test_a_rejection_needs_a_reason_and_keeps_it(alice: httpx.Client, runtime: Runtime) -> None:
    thread_id, request_id = waiting_deploy(runtime)
    path = f"/console/threads/{thread_id}"
    answer = post_form(
        alice, path, f"{path}/respond", request_id=request_id, decision="reject", reason="not on a Friday"
    )
    assert answer.status_code == 303
    response = runtime.load(thread_id).response_to(request_id)
    assert response is not None and (response.approved, response.comment) == (False, "not on a Friday")
    again = post_form(alice, path, f"{path}/respond", request_id=request_id, decision="approve")
    assert again.status_code == 409 and "already answered" in again.text


def test_launch_starts_a_thread_as_the_signed_in_person(alice: httpx.Client, runtime: Runtime) -> None:
    answer = post_form(alice, "/console/launch", "/console/launch", agent="deploy", text="deploy v1.1.0")
    assert answer.status_code == 303
    thread = runtime.load(answer.headers["location"].rsplit("/", 1)[1])
    assert thread.trigger is not None
    assert (thread.trigger.origin.channel, thread.trigger.origin.sender) == ("web", ALICE)
    unknown = post_form(alice, "/console/launch", "/console/launch", agent="nobody", text="hi")
    assert unknown.status_code == 422 and "no agent named" in unknown.text


def test_pause_resume_cancel_and_fork_from_the_thread_page(alice: httpx.Client, runtime: Runtime) -> None:
    thread_id, _ = waiting_deploy(runtime)
    path = f"/console/threads/{thread_id}"
    assert post_form(alice, path, f"{path}/control", action="pause", reason="lunch").status_code == 303
    assert runtime.load(thread_id).status == "paused"
    assert post_form(alice, path, f"{path}/control", action="resume").status_code == 303
    forked = post_form(alice, path, f"{path}/fork", at="1")
    assert forked.status_code == 303 and thread_id not in forked.headers["location"]
    assert post_form(alice, path, f"{path}/control", action="cancel").status_code == 303
    assert runtime.load(thread_id).status == "cancelled"
    again = post_form(alice, path, f"{path}/control", action="cancel")
    assert again.status_code == 409 and "already cancelled" in again.text
    assert post_form(alice, path, f"{path}/fork", at="999").status_code == 422


def test_the_thread_page_shows_the_timeline_and_raw_json(alice: httpx.Client, runtime: Runtime) -> None:
    thread_id, _ = waiting_deploy(runtime, "ship " + "x" * 2000)
    page = alice.get(f"/console/threads/{thread_id}").text
    assert 'data-type="trigger"' in page and 'data-type="human_request"' in page
    assert "<details>" in page  # the long trigger text is folded
    raw = alice.get(f"/console/threads/{thread_id}/json")
    assert raw.json()["id"] == thread_id and raw.json()["events"][0]["type"] == "trigger"


def test_threads_filter_by_channel_status_and_text(alice: httpx.Client, runtime: Runtime) -> None:
    waiting_deploy(runtime, "ship the blue release")
    post_form(alice, "/console/launch", "/console/launch", agent="deploy", text="ship the green release")
    assert "blue" in alice.get("/console/threads", params={"q": "BLUE"}).text
    assert "green" not in alice.get("/console/threads", params={"q": "blue"}).text
    web = alice.get("/console/threads", params={"channel": "web"}).text
    assert "green" in web and "blue" not in web
    waiting = alice.get("/console/threads", params={"status": "awaiting_human"}).text
    assert "blue" in waiting


def test_involved_visibility_shows_a_person_only_their_threads(
    bob: httpx.Client, alice: httpx.Client, runtime: Runtime
) -> None:
    runtime.settings.console_visibility = "involved"
    thread_id, _ = waiting_deploy(runtime, "ship the secret")
    assert bob.get(f"/console/threads/{thread_id}").status_code == 404
    assert "secret" not in bob.get("/console/threads").text
    assert "secret" in alice.get("/console/threads").text
    assert BOB not in alice.get("/console/inbox").text
