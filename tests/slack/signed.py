"""Slack's side of the Events API and interactivity: correctly signed requests, as Slack sends them.

A request is signed with ``v0=HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")`` in
``X-Slack-Signature`` and the timestamp in ``X-Slack-Request-Timestamp``. Events are
JSON; interactivity payloads are a form field ``payload`` holding JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from rq.job import Job

from bot.runtime import Runtime
from channels.slack.blocks import APPROVE, EDIT, REASON_FIELD, REASON_VIEW, REJECT
from tests.fake_slack import BOT_USER, TEAM

JSON = dict[str, Any]

SIGNING_SECRET = "test-signing-secret"
CHANNEL = "C0GENERAL"
ALICE = "U0ALICE"
"""Listed as an approver by id."""
BOB = "U0BOB"
"""In the ops user group, which is listed as an approver."""
OPS = "S0OPS"
MALLORY = "U0MALLORY"
"""Neither listed nor in a listed group."""
CAROL = "U0CAROL"
"""Asks the bot for things; not an approver (separation of duties keeps requesters from approving)."""

_ts = itertools.count(100)
_ids = itertools.count(1)


def new_ts() -> str:
    """A fresh Slack message timestamp (the fake's own posts count from 1700000000.000001)."""
    return f"1700001000.{next(_ts):06d}"


def signature(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return f"v0={digest}"


def signed_headers(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature(body, stamp, secret)}


def mention(text: str, user: str = ALICE, thread_ts: str | None = None, channel: str = CHANNEL) -> JSON:
    """An ``app_mention`` event: ``text`` addressed to the bot."""
    return _message_event("app_mention", f"<@{BOT_USER}> {text}", user, thread_ts, channel)


def message(
    text: str, user: str = ALICE, thread_ts: str | None = None, channel: str = CHANNEL, **extra: Any
) -> JSON:
    """A ``message`` event (add ``channel_type="im"`` for a DM, ``bot_id``/``subtype`` for others)."""
    return {**_message_event("message", text, user, thread_ts, channel), "channel_type": "channel", **extra}


def _message_event(kind: str, text: str, user: str, thread_ts: str | None, channel: str) -> JSON:
    ts = new_ts()
    event = {"type": kind, "user": user, "text": text, "ts": ts, "event_ts": ts, "channel": channel}
    return {**event, "thread_ts": thread_ts} if thread_ts else event


def event_callback(event: JSON, event_id: str | None = None) -> JSON:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "event": event,
    }


def _interaction(kind: str, user: str) -> JSON:
    """What every interactivity payload says: its type, workspace, user and a fresh trigger id."""
    return {
        "type": kind,
        "team": {"id": TEAM, "domain": "test"},
        "user": {"id": user, "team_id": TEAM},
        "api_app_id": "A0APP",
        "token": "legacy-verification-token",
        "trigger_id": f"{next(_ids)}.trigger",
    }


def click(action_id: str, value: str, user: str, post: JSON) -> JSON:
    """A ``block_actions`` payload: ``user`` clicked a button of the message ``post``."""
    return {
        **_interaction("block_actions", user),
        "channel": {"id": post["channel"]},
        "container": {"type": "message", "message_ts": post["ts"], "channel_id": post["channel"]},
        "message": {"type": "message", "ts": post["ts"], "thread_ts": post.get("thread_ts")},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value}],
    }


def reason_submitted(private_metadata: str, reason: str, user: str) -> JSON:
    """A ``view_submission`` of the reject modal."""
    field = {"type": "plain_text_input", "value": reason}
    return {
        **_interaction("view_submission", user),
        "view": {
            "id": "V0VIEW",
            "type": "modal",
            "callback_id": REASON_VIEW,
            "private_metadata": private_metadata,
            "state": {"values": {REASON_FIELD: {REASON_FIELD: field}}},
        },
    }


def edit_submitted(view: JSON, user: str, **changes: Any) -> JSON:
    """A ``view_submission`` of the Edit modal ``view`` (as ``views.open`` got it): every input as
    it was prefilled, except ``changes`` by block id (a value, or an option's value for a select
    or radio buttons)."""
    values: JSON = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        state: JSON = {"type": element["type"]}
        if element["type"] in ("static_select", "radio_buttons"):
            chosen = changes.get(block["block_id"])
            options = {option["value"]: option for option in element["options"]}
            state["selected_option"] = (
                options[chosen] if chosen is not None else element.get("initial_option")
            )
        else:
            state["value"] = changes.get(block["block_id"], element.get("initial_value"))
        values[block["block_id"]] = {"value": state}
    return {
        **_interaction("view_submission", user),
        "view": {**view, "id": "V0VIEW", "state": {"values": values}},
    }


class SignedSlack:
    """Posts to the web app's ``/slack/events`` as Slack does, signed unless told otherwise."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> httpx.Response:
        headers = signed_headers(body) if headers is None else headers
        return self.http.post(
            "/slack/events", content=body, headers={"Content-Type": content_type, **headers}
        )

    def event(self, event: JSON, event_id: str | None = None, retry: int | None = None) -> httpx.Response:
        body = json.dumps(event_callback(event, event_id))
        headers = signed_headers(body)
        if retry is not None:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        return self.post(body, "application/json", headers)

    def interact(self, payload: JSON) -> httpx.Response:
        return self.post(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    def approve(self, post: JSON, user: str) -> httpx.Response:
        return self.interact(click(APPROVE, button_value(post), user, post))

    def reject(self, post: JSON, user: str) -> httpx.Response:
        return self.interact(click(REJECT, button_value(post), user, post))

    def edit(self, post: JSON, user: str) -> httpx.Response:
        return self.interact(click(EDIT, button_value(post), user, post))


def button_value(post: JSON) -> str:
    """The value the Approve button of a posted approval message carries."""
    [actions] = [block for block in post["blocks"] if block["type"] == "actions"]
    values = {element["action_id"]: element["value"] for element in actions["elements"]}
    assert values[APPROVE] == values[REJECT] == values[EDIT]
    return str(values[APPROVE])


def deliver_all(runtime: Runtime) -> None:
    """Run the queued deliveries in this process, as an ``outerloop worker`` would."""
    for job_id in runtime.outbound_queue.get_job_ids():
        job = Job.fetch(job_id, connection=runtime.connection)
        runtime.outbound_queue.remove(job_id)
        runtime.deliver(*job.args)
