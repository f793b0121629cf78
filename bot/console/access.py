"""What a signed-in person may see and answer, and the lists built from that: inbox and threads.

Seeing follows ``OUTERLOOP_CONSOLE_VISIBILITY``; answering follows the request's approvers
exactly as the API's ``Runtime.respond`` checks them (``agent.approvals.may_answer``, and
``excluded``: who asked for a call may not approve it), so the console never offers what
would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.approvals import excluded, may_answer
from agent.events import HumanRequest, HumanResponse
from agent.thread import Status, Thread
from bot.commands.timeline import describe
from bot.settings import Settings
from bot.state.store import Store, ThreadNotFound

SCAN_LIMIT = 500
"""Threads one list page looks through at most when it filters by channel or text."""
PAGE_SIZE = 50


def may_see(settings: Settings, thread: Thread, person: str) -> bool:
    if settings.console_visibility == "all":
        return True
    return person in involved(thread)


def involved(thread: Thread) -> set[str]:
    """Who started, was asked in, or answered the thread."""
    people = {thread.trigger.origin.sender} if thread.trigger else set()
    for event in thread.events:
        if isinstance(event, HumanRequest):
            people.update(event.approvers)
        elif isinstance(event, HumanResponse):
            people.add(event.responder)
    if thread.pending is not None:
        people.update(thread.pending.approvers)
    return people


def may_answer_now(thread: Thread, person: str) -> bool:
    return thread.pending is not None and _may_answer(thread.pending, person)


def _may_answer(request: HumanRequest, person: str) -> bool:
    if request.kind == "approval" and excluded(request, person):
        return False
    return may_answer(request, person)


@dataclass(frozen=True)
class Waiting:
    thread: Thread
    request: HumanRequest
    mine: bool

    @property
    def since(self) -> datetime:
        return self.request.at


def inbox(store: Store, settings: Settings, person: str) -> list[Waiting]:
    """Every request waiting now that ``person`` may see, oldest first; ``mine`` if they may answer."""
    found = []
    for thread_id in store.ids(Status.AWAITING_HUMAN):
        try:
            thread = store.load(thread_id)
        except ThreadNotFound:  # forgotten between the index read and the load
            continue
        if thread.pending is not None and may_see(settings, thread, person):
            # An approver counted already towards a quorum waits on others, as they do.
            mine = _may_answer(thread.pending, person) and person not in thread.approvals
            found.append(Waiting(thread, thread.pending, mine))
    return sorted(found, key=lambda waiting: waiting.since)


@dataclass(frozen=True)
class Filters:
    status: Status | None = None
    agent: str | None = None
    channel: str | None = None
    text: str | None = None

    @property
    def scans(self) -> bool:
        """Whether matching needs each thread's events, not just the index."""
        return bool(self.channel or self.text)


def channel_of(thread: Thread) -> str:
    return thread.trigger.origin.channel if thread.trigger else "-"


def matches(thread: Thread, filters: Filters) -> bool:
    if filters.channel and channel_of(thread) != filters.channel:
        return False
    if filters.text:
        needle = filters.text.casefold()
        haystack = (thread.id, *(describe(event) for event in thread.events))
        return any(needle in text.casefold() for text in haystack)
    return True


def threads(
    store: Store, settings: Settings, person: str, filters: Filters, cursor: str | None
) -> tuple[list[Thread], str | None]:
    """A page of the threads ``person`` may see that match ``filters``, newest first, and the
    cursor of the next page. A text or channel filter looks through ``SCAN_LIMIT`` threads at
    most per page; the next page goes on from there."""
    found: list[Thread] = []
    scanned = 0
    while len(found) < PAGE_SIZE and scanned < SCAN_LIMIT:
        page = store.page(filters.status, filters.agent, cursor, PAGE_SIZE - len(found))
        scanned += len(page.threads)
        for summary in page.threads:
            try:
                thread = store.load(summary.id)
            except ThreadNotFound:
                continue
            if may_see(settings, thread, person) and matches(thread, filters):
                found.append(thread)
        cursor = page.cursor
        if cursor is None:
            break
    return found, cursor
