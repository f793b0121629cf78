"""Signed Slack requests with mutated fields, and unsigned or badly signed ones, to the real
endpoint: events and interactivity (clicks, the reject modal) are answered without a 5xx or an
error in the log, and a refused request stores nothing."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime import Runtime
from channels.slack.blocks import APPROVE, REJECT
from tests.hostile.conftest import LogWatch
from tests.hostile.mutations import JSON, header_values, mutated
from tests.slack.signed import (
    ALICE,
    CHANNEL,
    click,
    event_callback,
    mention,
    message,
    reason_submitted,
    signed_headers,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
POST = {"channel": CHANNEL, "ts": "1700000000.000001", "thread_ts": "1700000000.000001"}
VALUE = "thread-id:request-id"
"""A button value shaped like ours (``RequestRef``), naming nothing that exists."""

events = st.sampled_from(
    [event_callback(mention("deploy")), event_callback(message("hi", channel_type="im"))]
)
interactions = st.sampled_from(
    [
        click(APPROVE, VALUE, ALICE, POST),
        click(REJECT, VALUE, ALICE, POST),
        reason_submitted(VALUE, "not today", ALICE),
    ]
)


def as_event(payload: JSON) -> tuple[str, str]:
    return json.dumps(payload), "application/json"


def as_interaction(payload: JSON) -> tuple[str, str]:
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


requests = st.one_of(
    events.flatmap(mutated).map(as_event),
    interactions.flatmap(mutated).map(as_interaction),
    st.tuples(
        st.text(max_size=200), st.sampled_from(["application/json", "application/x-www-form-urlencoded"])
    ),
)


@FUZZ
@given(request=requests)
def test_signed_slack_requests_with_mutated_fields_get_no_server_error(
    web: httpx.Client, logs: LogWatch, request: tuple[str, str]
) -> None:
    body, content_type = request
    response = web.post(
        "/slack/events", content=body.encode(), headers={"Content-Type": content_type, **signed_headers(body)}
    )
    assert response.status_code < 500, response.text[:200]


forgeries = st.one_of(
    st.builds(
        lambda ts, sig: {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig},
        header_values,
        header_values,
    ),
    header_values.map(lambda sig: {**signed_headers(""), "X-Slack-Signature": sig}),
    st.just({}),
)


@FUZZ
@given(request=requests, forged=forgeries)
def test_unsigned_or_badly_signed_slack_requests_are_refused_and_store_nothing(
    web: httpx.Client, runtime: Runtime, logs: LogWatch, request: tuple[str, str], forged: dict[str, str]
) -> None:
    body, content_type = request
    headers = {name.encode(): value.encode("latin-1") for name, value in forged.items()}
    response = web.post(
        "/slack/events", content=body.encode(), headers={b"Content-Type": content_type.encode(), **headers}
    )
    assert response.status_code == 401, response.text[:200]
    assert set(response.json()) == {"detail"}
    assert runtime.store.ids() == []
