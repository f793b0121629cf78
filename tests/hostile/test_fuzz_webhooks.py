"""Webhook deliveries, signed with mutated bodies and headers or not signed at all: never a 5xx or
an error in the log, and a refused delivery stores nothing."""

from __future__ import annotations

import json
import time

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.runtime import Runtime
from channels.webhook import signature
from tests.hostile.conftest import HOOK_SECRET, LogWatch
from tests.hostile.mutations import header_values, json_values, mutated

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
PAYLOAD = {"ref": "v1.2.0", "pusher": {"name": "alice"}}

bodies = st.one_of(
    mutated(PAYLOAD).map(lambda payload: json.dumps(payload).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=300),
)
deliveries = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20), header_values
)


def post(web: httpx.Client, name: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    raw = {key.encode(): value.encode("latin-1") for key, value in headers.items()}
    return web.post(f"/webhooks/{name}", content=body, headers=raw)


@FUZZ
@given(body=bodies, delivery=deliveries)
def test_signed_deliveries_with_mutated_bodies_and_ids_get_no_server_error(
    web: httpx.Client, runtime: Runtime, logs: LogWatch, body: bytes, delivery: str
) -> None:
    before = set(runtime.store.ids())
    at = str(int(time.time()))
    headers = {
        "X-Outerloop-Timestamp": at,
        "X-Outerloop-Delivery": delivery,
        "X-Outerloop-Signature": signature(HOOK_SECRET.encode(), at, delivery, body),
    }
    response = post(web, "release", body, headers)
    assert response.status_code in (202, 401, 422), response.text[:200]
    if response.status_code != 202:
        assert set(runtime.store.ids()) == before, "a refused delivery stores nothing"


@FUZZ
@given(
    body=bodies,
    name=st.sampled_from(["release", "nope"]),
    headers=st.dictionaries(
        st.sampled_from(["X-Outerloop-Timestamp", "X-Outerloop-Delivery", "X-Outerloop-Signature"]),
        header_values,
    ),
)
def test_unsigned_or_badly_signed_deliveries_are_refused_and_store_nothing(
    web: httpx.Client, runtime: Runtime, logs: LogWatch, body: bytes, name: str, headers: dict[str, str]
) -> None:
    response = post(web, name, body, headers)
    assert response.status_code in (401, 404), response.text[:200]
    assert set(response.json()) == {"detail"}
    assert runtime.store.ids() == []
