"""Block Kit and mrkdwn: escaping, splitting, and the messages for requests and decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.approvals import digest
from agent.events import HumanRequest, HumanResponse, ProposedCall
from channels.slack.blocks import (
    APPROVE,
    EDIT,
    REJECT,
    BadPayload,
    RequestRef,
    clip,
    decided_message,
    escape,
    mention,
    reason_modal,
    reason_of,
    request_message,
    split,
    unescape,
    verdict,
)

APPROVAL = HumanRequest(
    request_id="r1",
    kind="approval",
    text='Approve deploy(tag="v1.1.0")?',
    call=ProposedCall(call_id="c1", tool="deploy", arguments={"tag": "v1.1.0", "environment": "<!here>"}),
    approvers=("U0ALICE", "S0OPS", "carol"),
)
assert APPROVAL.call is not None


@given(st.text())
def test_escaping_round_trips_and_leaves_no_control_characters(text: str) -> None:
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert unescape(escaped) == text


@given(st.text(alphabet=st.sampled_from("ab \n&<"), max_size=300), st.integers(min_value=5, max_value=40))
def test_split_keeps_every_character_in_parts_within_the_limit(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(len(part) <= limit for part in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_split_cuts_at_line_breaks_then_spaces_then_anywhere() -> None:
    assert split("aaaa\nbbbb cccc", 10) == ["aaaa", "bbbb cccc"]
    assert split("aaaa bbbb cccc", 10) == ["aaaa bbbb", "cccc"]
    assert split("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert split("short", 10) == ["short"]


def test_split_never_cuts_an_escaped_character_in_half() -> None:
    assert split(escape("a&b&c&"), 8) == ["a&amp;b", "&amp;c", "&amp;"]
    assert all(unescape(part) in "a&b&c&" for part in split(escape("a&b&c&"), 8))


def test_clip_never_leaves_half_an_entity() -> None:
    assert clip(escape("&" * 10), 12) == "&amp;&amp;…"
    assert clip("fits", 12) == "fits"


def test_mentions_of_users_groups_and_other_names() -> None:
    assert [mention(e) for e in ("U0ALICE", "W0BOB", "S0OPS", "carol <3")] == [
        "<@U0ALICE>",
        "<@W0BOB>",
        "<!subteam^S0OPS>",
        "carol &lt;3",
    ]


def test_an_approval_message_shows_the_call_its_arguments_and_approve_edit_reject_buttons() -> None:
    blocks = request_message("t1", APPROVAL)
    text = json.dumps(blocks)
    assert "`deploy`" in text and "v1.1.0" in text
    assert "&lt;!here&gt;" in text and "<!here>" not in text, "arguments are escaped"
    assert "<@U0ALICE>, <!subteam^S0OPS>, carol" in text
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [(e["action_id"], e.get("style")) for e in actions["elements"]] == [
        (APPROVE, "primary"),
        (EDIT, None),
        (REJECT, "danger"),
    ]
    bound = RequestRef("t1", "r1", digest(APPROVAL.call.tool, APPROVAL.call.arguments))
    assert {RequestRef.parse(e["value"]) for e in actions["elements"]} == {bound}, (
        "the buttons bind the arguments"
    )
    assert RequestRef.parse(RequestRef("t1", "r1").value()) == RequestRef("t1", "r1"), (
        "older buttons still read"
    )


def test_a_decided_message_replaces_the_buttons_with_who_decided_when() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rejected = HumanResponse(request_id="r1", responder="U0BOB", approved=False, comment="not <today>", at=at)
    blocks = decided_message(APPROVAL, rejected)
    assert "actions" not in [b["type"] for b in blocks]
    assert verdict(rejected) == (
        f":x: Rejected by <@U0BOB> <!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|"
        f"{at.isoformat()}>: not &lt;today&gt;"
    )
    assert verdict(rejected.model_copy(update={"approved": True, "comment": None})).startswith(
        ":white_check_mark: Approved by <@U0BOB>"
    )


@pytest.mark.parametrize("value", [None, "", "not json", "[]", '{"thread": "t1"}'])
def test_a_button_value_we_did_not_make_is_a_bad_payload(value: str | None) -> None:
    with pytest.raises(BadPayload, match="not an Outerloop request reference"):
        RequestRef.parse(value)


def test_the_reason_modal_round_trips_its_request_and_reason() -> None:
    modal = reason_modal(RequestRef("t1", "r1"))
    assert RequestRef.parse(modal["private_metadata"]) == RequestRef("t1", "r1")
    view = {"state": {"values": {"reason": {"reason": {"value": "  freeze  "}}}}}
    assert reason_of(view) == "freeze"
    with pytest.raises(BadPayload, match="without a reason"):
        reason_of({"state": {}})
