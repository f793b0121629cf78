"""Routing between agents (factor 10): a Slack channel's agent, or the one a message names."""

from __future__ import annotations

import json

import pytest

from agent.events import Trigger
from bot.runtime import Runtime
from channels.slack.inbound import route_key
from tests.fake_slack import TEAM
from tests.slack.signed import CHANNEL, SignedSlack, mention

NOTES_CHANNEL = "C0NOTES"


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "OUTERLOOP_SLACK_CHANNELS": json.dumps({NOTES_CHANNEL: "notes"})}


def started(runtime: Runtime, event: dict[str, str], channel: str) -> tuple[str, str]:
    thread_id = runtime.thread_of(route_key(TEAM, channel, event["ts"]))
    assert thread_id is not None
    thread = runtime.load(thread_id)
    [trigger] = [e for e in thread.events if isinstance(e, Trigger)]
    return thread.agent, trigger.text


def test_a_mapped_channel_goes_to_its_agent_and_others_to_the_default(
    slack: SignedSlack, runtime: Runtime
) -> None:
    in_notes = mention("remember the milk", channel=NOTES_CHANNEL)
    elsewhere = mention("ship it")
    assert slack.event(in_notes).status_code == 200
    assert slack.event(elsewhere).status_code == 200
    assert started(runtime, in_notes, NOTES_CHANNEL) == ("notes", "remember the milk")
    assert started(runtime, elsewhere, CHANNEL) == ("deploy", "ship it")


def test_a_message_naming_an_agent_goes_to_it_and_an_unknown_name_is_just_text(
    slack: SignedSlack, runtime: Runtime
) -> None:
    named = mention("notes: remember the milk")
    unknown = mention("staging: ship it", channel=NOTES_CHANNEL)
    assert slack.event(named).status_code == 200
    assert slack.event(unknown).status_code == 200
    assert started(runtime, named, CHANNEL) == ("notes", "remember the milk")
    assert started(runtime, unknown, NOTES_CHANNEL) == ("notes", "staging: ship it")
