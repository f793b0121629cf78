"""Socket Mode: the same listeners, fed over a WebSocket instead of signed HTTP requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.events import HumanResponse, Trigger
from bot.doors.slack import socket_mode
from bot.runtime import Runtime
from channels.slack.blocks import APPROVE
from channels.slack.inbound import route_key
from tests.answering import advance_and_answer
from tests.fake_slack import TEAM, FakeSlack
from tests.fake_socket_mode import FakeSocketMode
from tests.services import wait_for
from tests.slack.signed import (
    ALICE,
    CAROL,
    CHANNEL,
    button_value,
    click,
    deliver_all,
    event_callback,
    mention,
)

APP_TOKEN = "xapp-test-token"


@pytest.fixture
def socket(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as endpoint:
        fake_slack.socket_url = endpoint.url
        yield endpoint


def test_events_and_clicks_arrive_over_socket_mode_and_are_acknowledged_once_stored(
    runtime: Runtime, fake_slack: FakeSlack, socket: FakeSocketMode
) -> None:
    runtime.settings.slack_app_token = APP_TOKEN
    with socket_mode(runtime):
        wait_for(lambda: socket.connected, "the app to connect over Socket Mode")
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.token == APP_TOKEN

        start = mention("deploy the latest", user=CAROL)
        envelope = socket.send("events_api", event_callback(start))
        wait_for(lambda: socket.ack_for(envelope), "the event's acknowledgement")
        retried = socket.send("events_api", event_callback(start), retry_attempt=1)
        wait_for(lambda: socket.ack_for(retried), "the retry's acknowledgement")
        thread_id = runtime.thread_of(route_key(TEAM, CHANNEL, start["ts"]))
        assert thread_id is not None
        events = [e.type for e in runtime.load(thread_id).events]
        assert events == ["trigger", "model_requested"], "the retry changed nothing"
        assert isinstance(runtime.load(thread_id).events[0], Trigger)

        advance_and_answer(runtime, thread_id)
        deliver_all(runtime)
        [post] = [p for p in fake_slack.posts() if p.get("blocks")]
        clicked = socket.send("interactive", click(APPROVE, button_value(post), ALICE, post))
        wait_for(lambda: socket.ack_for(clicked), "the click's acknowledgement")
        [response] = [e for e in runtime.load(thread_id).events if isinstance(e, HumanResponse)]
        assert (response.responder, response.approved) == (ALICE, True)
