"""Who may answer: listed users, and members of listed user groups as Slack reports them."""

from __future__ import annotations

import pytest

from channels.slack.approvers import Approvers, MembershipUnknown, NotAnApprover
from channels.slack.config import SlackConfig
from tests.fake_slack import BOT_TOKEN, FakeSlack, error, rate_limited
from tests.slack.signed import ALICE, BOB, MALLORY, OPS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def approvers(fake_slack: FakeSlack, clock: Clock | None = None) -> Approvers:
    client = SlackConfig(bot_token=BOT_TOKEN, api_url=fake_slack.api_url).client(patient=False)
    return Approvers(client, ttl=60, clock=clock or Clock())


def test_listed_users_answer_for_themselves_and_group_members_through_the_group(
    fake_slack: FakeSlack,
) -> None:
    check = approvers(fake_slack)
    assert check.via((ALICE, OPS), ALICE) is None
    assert check.via((), MALLORY) is None, "a request without approvers is anyone's"
    assert check.via((ALICE, OPS), BOB) == OPS
    with pytest.raises(NotAnApprover, match=r"only <@U0ALICE>, <!subteam\^S0OPS> may answer"):
        check.via((ALICE, OPS), MALLORY)


def test_group_members_are_looked_up_once_a_minute(fake_slack: FakeSlack) -> None:
    clock = Clock()
    check = approvers(fake_slack, clock)
    assert check.via((OPS,), BOB) == OPS
    fake_slack.groups[OPS] = [MALLORY]
    clock.now = 59
    assert check.via((OPS,), BOB) == OPS, "still the cached members"
    clock.now = 61
    assert check.via((OPS,), MALLORY) == OPS
    with pytest.raises(NotAnApprover):
        check.via((OPS,), BOB)
    assert len(fake_slack.calls_to("usergroups.users.list")) == 2


@pytest.mark.parametrize("reply", [error("missing_scope"), rate_limited(30)], ids=["error", "rate limited"])
def test_a_failed_group_lookup_says_so_instead_of_waiting(fake_slack: FakeSlack, reply: object) -> None:
    fake_slack.script("usergroups.users.list", reply)  # type: ignore[arg-type]
    with pytest.raises(MembershipUnknown, match=r"could not check who is in <!subteam\^S0OPS>"):
        approvers(fake_slack).via((OPS,), BOB)
