"""Deliveries in the metrics: a Slack failure that RQ retries, and one that nothing retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from slack_sdk.errors import SlackApiError

from agent.events import AgentMessage
from bot.metrics.exposition import render
from bot.runtime import Runtime
from channels.slack.inbound import route_key
from tests.fake_slack import TEAM, FakeSlack, error
from tests.metrics_helpers import parse, value
from tests.services import Workers, wait_for
from tests.slack.signed import CHANNEL, SignedSlack, mention


def started(slack: SignedSlack, runtime: Runtime, text: str) -> str:
    start = mention(text)
    slack.event(start)
    thread_id = runtime.thread_of(route_key(TEAM, CHANNEL, start["ts"]))
    assert thread_id is not None
    return thread_id


def test_a_delivery_that_fails_in_a_worker_is_counted_retried_then_delivered(
    slack: SignedSlack,
    runtime: Runtime,
    fake_slack: FakeSlack,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))  # the scrape reads the workers' files
    thread_id = started(slack, runtime, "hello there")
    fake_slack.script("chat.postMessage", error("channel_not_found"))
    runtime.record(runtime.load(thread_id), AgentMessage(text="first try fails"))
    workers = Workers({**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, tmp_path / "workers.log")
    try:
        workers.start(1)
        wait_for(lambda: "first try fails" in [p["text"] for p in fake_slack.posts()], "the retried post", 60)
        samples = wait_for(
            lambda: (
                (s := parse(render(runtime.connection).decode()))
                and value(s, "outerloop_deliveries_total", channel="slack", outcome="delivered") >= 1
                and s
            ),
            "the delivery counted",
        )
    finally:
        workers.stop_all()

    assert value(samples, "outerloop_deliveries_total", channel="slack", outcome="retried") == 1
    assert value(samples, "outerloop_deliveries_total", channel="slack", outcome="failed") == 0


def test_a_delivery_that_fails_outside_a_job_is_counted_failed(
    slack: SignedSlack, runtime: Runtime, fake_slack: FakeSlack
) -> None:
    thread_id = started(slack, runtime, "hello again")
    before = REGISTRY.get_sample_value(
        "outerloop_deliveries_total", {"channel": "slack", "outcome": "failed"}
    )
    fake_slack.script("chat.postMessage", error("channel_not_found"))
    event = runtime.record(runtime.load(thread_id), AgentMessage(text="fails")).thread.events[-1]

    with pytest.raises(SlackApiError):
        runtime.deliver(thread_id, event.id)

    after = REGISTRY.get_sample_value("outerloop_deliveries_total", {"channel": "slack", "outcome": "failed"})
    assert (after or 0) == (before or 0) + 1
