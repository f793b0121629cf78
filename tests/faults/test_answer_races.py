"""Approve and reject sent at the same instant, 60 times: exactly one answer counts each time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.faults.approver import Approver, answer, awaiting_approval
from tests.faults.rig import Rig

PAIRS = 60
RESPONDERS = {True: "alice", False: "bob"}
"""Who approves and who rejects, so a refusal can be checked for naming the first answer."""


@pytest.fixture
def deploy_seconds() -> float:
    return 0.0


def race(api: httpx.Client, thread_id: str, request_id: str) -> dict[bool, httpx.Response]:
    """POST an approval and a rejection of one request, released together by a barrier."""
    barrier = threading.Barrier(2)

    def send(approved: bool) -> httpx.Response:
        barrier.wait()
        return answer(api, thread_id, request_id, RESPONDERS[approved], approved)

    with ThreadPoolExecutor(2) as pool:
        approve, reject = pool.map(send, (True, False))
    return {True: approve, False: reject}


def test_of_an_approve_and_a_reject_sent_together_exactly_one_is_accepted(system: Rig) -> None:
    system.workers.start(2)
    system.start_scheduler()
    threads = system.launch(PAIRS)
    requests = {thread_id: awaiting_approval(system.api, thread_id)["request_id"] for thread_id in threads}

    results = {thread_id: race(system.api, thread_id, requests[thread_id]) for thread_id in threads}

    both, wrong = [], []
    for thread_id, answers in results.items():
        codes = {approved: response.status_code for approved, response in answers.items()}
        if sorted(codes.values()) == [202, 202]:
            both.append(thread_id)
            continue
        winner = next((approved for approved, code in codes.items() if code == 202), None)
        loser = answers[not winner] if winner is not None else None
        if winner is None or loser is None or loser.status_code != 409:
            wrong.append(f"{thread_id}: {codes}")
        elif RESPONDERS[winner] not in loser.json()["detail"]:
            wrong.append(f"{thread_id}: the refusal does not name {RESPONDERS[winner]}: {loser.text}")
    assert not both, f"{len(both)} of {PAIRS} pairs had both answers accepted (202): {both}"
    assert not wrong, "\n".join(wrong)

    approvals = sum(answers[True].status_code == 202 for answers in results.values())
    observer = Approver(system.api, limit=0)
    observer.watch(threads)
    assert observer.settle(timeout=60), "every thread settles"
    for thread_id, answers in results.items():
        accepted = [approved for approved, response in answers.items() if response.status_code == 202]
        observer.accepted[thread_id] = [requests[thread_id]] * len(accepted)
    system.outcome(observer, expected=approvals).verify()
    assert len(system.executions().starts) == approvals, "one deploy per accepted approval"
