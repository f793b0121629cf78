"""``SlackOutbound``: a thread's replies, requests and decisions, posted in its Slack thread.

Everything goes into the Slack thread the conversation started in. A thread started
without a Slack message (a schedule naming only a channel) posts its first message
at the top of the channel and returns that message's route in the receipt, so the
runtime maps the new Slack thread to it and replies there continue the thread.

While a thread runs, the message that woke it (a mention, or the request message a
decision was clicked on) carries an :eyes: reaction, taken off when the thread stops
to ask, finishes or fails. Text from the agent is escaped (see ``blocks.escape``) and
sent in parts when long. A Web API failure raises, so the delivery is retried with
backoff; 429 answers are first waited out by the client's rate-limit handler.
"""

from __future__ import annotations

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from agent.events import (
    AgentMessage,
    Cancelled,
    Done,
    Event,
    Failed,
    HumanRequest,
    HumanResponse,
    Paused,
    RequestExpired,
    Resumed,
    Trigger,
)
from agent.thread import Status, Thread
from channels.gateway import ROUTE, Receipt, Receipts
from channels.slack import CHANNEL
from channels.slack.blocks import (
    MESSAGE_LIMIT,
    Block,
    decided_message,
    escape,
    expiry_notice,
    fallback,
    mention,
    request_message,
    split,
    timed_out_message,
    verdict,
)
from channels.slack.inbound import route_key

log = structlog.get_logger(__name__)

INTERESTS = frozenset(
    {
        "trigger",
        "agent_message",
        "human_request",
        "human_response",
        "request_expired",
        "done",
        "failed",
        "cancelled",
        "paused",
        "resumed",
    }
)
WORKING = "eyes"
"""The reaction that says "working on it"."""
STOPS = (HumanRequest, Done, Failed, Cancelled, Paused)
"""Events after which the thread no longer runs, so the working reaction comes off."""
HARMLESS = frozenset({"already_reacted", "no_reaction", "message_not_found"})
"""Reaction errors that mean the reaction is already as wanted (or its message is gone)."""


class NoSlackAddress(ValueError):
    """The thread's trigger says it came from Slack but names no channel to answer in."""


class SlackOutbound:
    interests = INTERESTS

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._team: str | None = None

    def deliver(self, thread: Thread, event: Event, receipts: Receipts) -> Receipt | None:
        match event:
            case Trigger():
                if thread.status is Status.RUNNING:
                    self._react("reactions_add", _message_of(event, thread, receipts))
                return None
            case HumanResponse():
                self._decided(thread, event, receipts)
                return None
            case RequestExpired():
                return self._expired(thread, event, receipts)
            case AgentMessage(text=text):
                return self._say(thread, receipts, text)
            case Resumed(by=by):
                return self._say(thread, receipts, "", prefix=f":arrow_forward: Resumed by {mention(by)}.")
        self._stopped(thread, event, receipts)
        match event:
            case HumanRequest():
                return self._asked(thread, event, receipts)
            case Done(message=message):
                return self._say(thread, receipts, message)
            case Failed(reason=reason):
                return self._say(thread, receipts, reason, prefix=":warning: Sorry, I had to stop: ")
            case Cancelled(by=by, reason=reason):
                cancelled = f":no_entry_sign: Cancelled by {mention(by)}. "
                return self._say(thread, receipts, reason or "", prefix=cancelled)
            case Paused(by=by, reason=reason):
                paused = f":double_vertical_bar: Paused by {mention(by)}. "
                return self._say(thread, receipts, reason or "", prefix=paused)
        return None

    def _say(self, thread: Thread, receipts: Receipts, text: str, prefix: str = "") -> Receipt:
        """Post agent text, escaped, in as many messages as its length needs."""
        parts = split(escape(text), limit=MESSAGE_LIMIT - len(prefix))
        return self._post(thread, receipts, [prefix + parts[0], *parts[1:]])

    def _post(
        self, thread: Thread, receipts: Receipts, parts: list[str], blocks: list[Block] | None = None
    ) -> Receipt:
        """Post ``parts`` in order in the thread's Slack thread; the receipt names the first."""
        channel, root = _where(thread, receipts)
        receipt: dict[str, str] = {}
        for part in parts:
            sent = self.client.chat_postMessage(
                channel=channel, thread_ts=root, text=part, blocks=blocks, unfurl_links=False
            )
            if not receipt:
                receipt = {"channel": str(sent["channel"]), "ts": str(sent["ts"])}
                if root is None:  # this message starts the Slack thread; replies continue ours
                    root = receipt["ts"]
                    receipt[ROUTE] = route_key(self._team_of(thread), receipt["channel"], root)
        log.info("slack.posted", thread_id=thread.id, channel=channel, ts=receipt["ts"], parts=len(parts))
        return receipt

    def _asked(self, thread: Thread, request: HumanRequest, receipts: Receipts) -> Receipt:
        """Post a request with its buttons; or, when a standing approval answered it already,
        the call approved under it: nobody is asked for what nobody needs to decide."""
        settled = thread.response_to(request.request_id)
        if settled is not None and settled.under is not None:
            return self._post(thread, receipts, [verdict(settled)], decided_message(request, settled))
        shown = thread.request(request.request_id) or request
        blocks = request_message(thread.id, shown, _approvals(thread, shown), request)
        return self._post(thread, receipts, [fallback(request)], blocks)

    def _decided(self, thread: Thread, response: HumanResponse, receipts: Receipts) -> None:
        """Show the decision on the request's message, and that the thread is working again;
        while the request waits for more approvers, show who approved it so far."""
        request = thread.request(response.request_id)
        settled = thread.response_to(response.request_id)
        if thread.pending is not None and thread.pending.request_id == response.request_id:
            self._progressed(thread, thread.pending, receipts)
            return
        if request is None or settled is None or settled.id != response.id:
            log.info("slack.response_not_shown", thread_id=thread.id, reason="the thread ignored it")
            return
        receipt = receipts.receipt(request.id)
        if receipt is None:
            log.warning("slack.request_message_unknown", thread_id=thread.id, request_id=request.request_id)
            return
        self.client.chat_update(
            channel=receipt["channel"],
            ts=receipt["ts"],
            text=verdict(response),
            blocks=decided_message(request, response),
        )
        if thread.status is Status.RUNNING:
            self._react("reactions_add", (receipt["channel"], receipt["ts"]))

    def _progressed(self, thread: Thread, pending: HumanRequest, receipts: Receipts) -> None:
        """Update a pending request's message to the call as it stands and who approved it."""
        receipt = receipts.receipt(pending.id)
        if receipt is None:
            log.warning("slack.request_message_unknown", thread_id=thread.id, request_id=pending.request_id)
            return
        asked = thread.events.first_request(pending.request_id)
        blocks = request_message(thread.id, pending, thread.approvals, asked)
        self.client.chat_update(
            channel=receipt["channel"], ts=receipt["ts"], text=fallback(pending), blocks=blocks
        )

    def _expired(self, thread: Thread, expired: RequestExpired, receipts: Receipts) -> Receipt | None:
        """A time-out closes the request message; a reminder or an escalation updates who may
        answer on it and says so in the thread, mentioning them."""
        request = thread.request(expired.request_id)
        receipt = receipts.receipt(request.id) if request is not None else None
        if request is None or receipt is None:
            log.warning("slack.request_message_unknown", thread_id=thread.id, request_id=expired.request_id)
            return None
        if expired.outcome == "timed_out":
            blocks = timed_out_message(request, expired)
            self.client.chat_update(
                channel=receipt["channel"], ts=receipt["ts"], text=fallback(request), blocks=blocks
            )
            return None
        if thread.pending is None or thread.pending.request_id != expired.request_id:
            log.info("slack.expiry_not_shown", thread_id=thread.id, reason="the request was answered since")
            return None
        asked = thread.pending.model_copy(update={"approvers": expired.approvers})
        blocks = request_message(
            thread.id, asked, thread.approvals, thread.events.first_request(request.request_id)
        )
        self.client.chat_update(
            channel=receipt["channel"], ts=receipt["ts"], text=fallback(asked), blocks=blocks
        )
        return self._post(thread, receipts, [expiry_notice(expired)])

    def _stopped(self, thread: Thread, stop: Event, receipts: Receipts) -> None:
        """Take the working reaction off every message that woke the thread since it last stopped."""
        position = next(n for n, e in enumerate(thread.events) if e.id == stop.id)
        for earlier in reversed(thread.events[:position]):
            if isinstance(earlier, STOPS):
                break
            self._react("reactions_remove", _message_of(earlier, thread, receipts))

    def _react(self, method: str, message: tuple[str, str] | None) -> None:
        """Add or remove the working reaction; it is a courtesy, so a failure is only logged."""
        if message is None:
            return
        channel, ts = message
        try:
            getattr(self.client, method)(channel=channel, timestamp=ts, name=WORKING)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in HARMLESS:
                log.warning("slack.reaction_failed", method=method, channel=channel, ts=ts, error=error)

    def _team_of(self, thread: Thread) -> str:
        trigger = thread.trigger
        team = trigger.origin.address.get("team") if trigger is not None else None
        if team:
            return team
        if self._team is None:
            self._team = str(self.client.auth_test()["team_id"])
        return self._team


def _approvals(thread: Thread, request: HumanRequest) -> tuple[str, ...]:
    pending = thread.pending
    return thread.approvals if pending is not None and pending.request_id == request.request_id else ()


def _where(thread: Thread, receipts: Receipts) -> tuple[str, str | None]:
    """The channel and Slack thread to post in; no thread when none has been started yet."""
    trigger = thread.trigger
    address = trigger.origin.address if trigger is not None else {}
    if "channel" not in address:
        raise NoSlackAddress(f"thread {thread.id} came from Slack but its trigger names no channel")
    root = address.get("thread_ts") or address.get("ts")
    if root:
        return address["channel"], root
    for earlier in thread.events:  # a schedule's thread: the Slack thread its first post started
        receipt = receipts.receipt(earlier.id) if earlier.type in INTERESTS else None
        if receipt is not None and ROUTE in receipt:
            return receipt["channel"], receipt["ts"]
    return address["channel"], None


def _message_of(event: Event, thread: Thread, receipts: Receipts) -> tuple[str, str] | None:
    """The Slack message that woke the thread with ``event``, if there is one."""
    if isinstance(event, Trigger) and event.origin.channel == CHANNEL:
        address = event.origin.address
        return (address["channel"], address["ts"]) if "channel" in address and "ts" in address else None
    if isinstance(event, HumanResponse):
        request = thread.request(event.request_id)
        receipt = receipts.receipt(request.id) if request is not None else None
        return (receipt["channel"], receipt["ts"]) if receipt is not None else None
    return None
