"""The whole Slack flow with real worker processes posting to the fake Slack Web API."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fake_slack import FakeSlack
from tests.services import Workers, wait_for
from tests.slack.signed import BOB, OPS, SignedSlack, mention


def test_mention_to_approval_to_deploy_to_reply_through_worker_processes(
    slack: SignedSlack, fake_slack: FakeSlack, workers: Workers, deploy_log: Path
) -> None:
    workers.start(1)
    start = mention("deploy the latest")
    assert slack.event(start).status_code == 200
    post = wait_for(
        lambda: next((p for p in fake_slack.posts() if p.get("blocks")), None), "the approval message"
    )
    assert post["thread_ts"] == start["ts"]
    assert not deploy_log.exists()

    assert slack.approve(post, BOB).status_code == 200
    reply = wait_for(
        lambda: next((p for p in fake_slack.posts() if p["text"].startswith("Done: deployed")), None),
        "the reply in the thread",
    )
    assert reply["thread_ts"] == start["ts"]
    assert deploy_log.read_text().split() == ["v1.1.0", "staging"]
    [update] = wait_for(lambda: fake_slack.calls_to("chat.update"), "the decision on the request message")
    assert f"Approved by <@{BOB}>" in json.dumps(update.params["blocks"])
    assert [c.params["usergroup"] for c in fake_slack.calls_to("usergroups.users.list")] == [OPS]
