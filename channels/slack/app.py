"""The slack_bolt ``App``: listeners for mentions, messages, Approve/Reject clicks and the reason modal.

The app runs with ``process_before_response``: Slack gets its acknowledgement only
after the listener has persisted the event through the ``Gateway`` (invariant 3),
and a failure to persist answers 500 so Slack delivers the event again. Listeners
never call the model; anything slow that need not be durable (telling a clicker
why nothing changed, opening the reject modal) runs in a Bolt lazy listener after
the acknowledgement. Bolt's own signature check is off: the HTTP endpoint verifies
each request (``channels.slack.signature``) before Bolt parses it, and Socket Mode
needs none; Bolt's check would log the whole body of every badly signed request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltContext, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from agent.tools import InvalidArguments
from channels.argument_form import FieldErrors
from channels.gateway import Gateway
from channels.request_text import BlankRequest
from channels.slack.answers import Answers, Refused
from channels.slack.approvers import Approvers
from channels.slack.blocks import (
    APPROVE,
    EDIT,
    REASON_FIELD,
    REASON_VIEW,
    REJECT,
    BadPayload,
    RequestRef,
    reason_modal,
    reason_of,
)
from channels.slack.config import SlackConfig
from channels.slack.editor import EDIT_VIEW, FIELD, HOURS, edited
from channels.slack.inbound import Ignored, Inbound, Routes, read_message

log = structlog.get_logger(__name__)

Unavailable = Callable[[Exception], bool]
"""Whether an error a listener raised means the gateway's store is away (an outage)."""
RETRY_AFTER = 5
"""Seconds Slack is told to wait during an outage (it retries on its own schedule anyway)."""

NOTICE = "outerloop_notice"
"""Context key: what to tell the clicker, handed from a listener to its lazy follow-up."""
REASON_WANTED = "outerloop_reason_wanted"
"""Context key: the request a Reject click may go on to reject, once a reason is given."""
EDIT_WANTED = "outerloop_edit_wanted"
"""Context key: the request an Edit click may go on to approve, with the arguments edited."""


def _never(error: Exception) -> bool:
    return False


def build_app(gateway: Gateway, config: SlackConfig, unavailable: Unavailable = _never) -> App:
    """A Bolt app for one workspace; checks the bot token with ``auth.test`` on creation.

    ``unavailable`` tells a failure of the gateway's own store (an outage) from a bug: Slack is
    then told 503 with ``Retry-After``, and the caller logs the outage once."""
    answers = Answers(gateway, Approvers(config.client(patient=False)))
    routes = Routes(config.agent, config.channels, config.agents)
    listeners = Listeners(Inbound(gateway, routes, answers), answers, unavailable)
    app = App(
        client=config.client(),
        signing_secret=config.signing_secret or "",
        process_before_response=True,
        request_verification_enabled=False,
        logger=logging.getLogger("slack_bolt"),
    )
    app.event("app_mention")(ack=listeners.message, lazy=[listeners.tell_writer])
    app.event("message")(ack=listeners.message, lazy=[listeners.tell_writer])
    app.action(APPROVE)(ack=listeners.approve, lazy=[listeners.tell_clicker])
    app.action(REJECT)(ack=listeners.reject, lazy=[listeners.ask_reason])
    app.view(REASON_VIEW)(listeners.reason_given)
    app.action(EDIT)(ack=listeners.edit, lazy=[listeners.open_editor])
    app.view(EDIT_VIEW)(listeners.edit_submitted)
    app.error(listeners.failed)
    return app


def _notify(
    client: WebClient, context: BoltContext, channel: str, user: str, message: dict[str, Any]
) -> None:
    """Tell ``user`` the listener's notice, if any, in the Slack thread of ``message``."""
    notice = context.get(NOTICE)
    if not notice:
        return
    try:
        client.chat_postEphemeral(
            channel=channel, user=user, text=notice, thread_ts=message.get("thread_ts") or message.get("ts")
        )
    except SlackClientError as exc:
        log.warning("slack.notice_failed", user=user, error=str(exc))


def _clicker(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def _button_value(body: dict[str, Any]) -> str | None:
    actions = body.get("actions") or [{}]
    value = actions[0].get("value")
    return str(value) if value is not None else None


class Listeners:
    def __init__(self, inbound: Inbound, answers: Answers, unavailable: Unavailable) -> None:
        self.inbound = inbound
        self.answers = answers
        self.unavailable = unavailable

    def message(self, ack: Ack, body: dict[str, Any], context: BoltContext, request: BoltRequest) -> None:
        """A mention, DM or thread reply: a trigger or an answer, persisted before the ack."""
        event_id = body.get("event_id")
        retry = request.headers.get("x-slack-retry-num", [None])[0]
        try:
            submitted = self.inbound.receive(read_message(body, context.bot_user_id))
        except Ignored as exc:
            log.info("slack.ignored", event_id=event_id, reason=str(exc))
        except BlankRequest as exc:
            log.info("slack.refused", event_id=event_id, reason=str(exc))
            context[NOTICE] = str(exc)
        else:
            log.info(
                "slack.received",
                event_id=event_id,
                thread_id=submitted.thread.id,
                duplicate=not submitted.applied,
                retry=retry,
            )
        ack()

    def approve(self, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        try:
            self.answers.decide(RequestRef.parse(_button_value(body)), _clicker(body), approved=True)
        except (Refused, BadPayload) as exc:
            log.info("slack.click_refused", user=_clicker(body), reason=str(exc))
            context[NOTICE] = str(exc)
        ack()

    def reject(self, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """A Reject click only asks for a reason; the modal's submission records the decision."""
        self._wants_modal(body, context, REASON_WANTED, approving=False)
        ack()

    def edit(self, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """An Edit click only opens the modal; its submission records the approval."""
        self._wants_modal(body, context, EDIT_WANTED, approving=True)
        ack()

    def _wants_modal(
        self, body: dict[str, Any], context: BoltContext, wanted: str, *, approving: bool
    ) -> None:
        """Hand the clicked request on to the lazy listener that opens a modal (under ``wanted``),
        if the clicker may answer it; else what to tell them."""
        try:
            ref = RequestRef.parse(_button_value(body))
            self.answers.check(ref, _clicker(body), approving=approving)
        except (Refused, BadPayload) as exc:
            log.info("slack.click_refused", user=_clicker(body), reason=str(exc))
            context[NOTICE] = str(exc)
        else:
            context[wanted] = ref.value()

    def open_editor(self, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Lazy: open the Edit modal, built from the tool's schema and prefilled, or say why not."""
        wanted = context.get(EDIT_WANTED)
        try:
            if not wanted:
                raise Refused(context.get(NOTICE) or "")
            view = self.answers.editor(RequestRef.parse(wanted), _clicker(body))
        except (Refused, BadPayload) as exc:
            context[NOTICE] = str(exc)
            self.tell_clicker(body, context, client)
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackClientError as exc:
            log.warning("slack.modal_failed", user=_clicker(body), error=str(exc))

    def edit_submitted(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The Edit modal was submitted: approve with its arguments (and scope), or show in the
        modal what is wrong: an argument the tool refuses, or why nothing can be approved."""
        inputs = [block["block_id"] for block in view.get("blocks") or [] if block.get("type") == "input"]
        first = inputs[0] if inputs else FIELD
        try:
            ref = RequestRef.parse(view.get("private_metadata"))
            arguments, standing = edited(view, self.answers.schema(ref))
            self.answers.decide(ref, _clicker(body), approved=True, arguments=arguments, standing=standing)
        except FieldErrors as exc:
            errors = exc.errors
        except InvalidArguments as exc:
            errors = {
                (FIELD + name if FIELD + name in inputs else first): problem
                for name, problem in exc.problems.items()
            }
        except (Refused, BadPayload) as exc:
            errors = {first: str(exc)}
        except ValueError as exc:  # a standing scope the policy or its limits refuse
            errors = {HOURS if HOURS in inputs else first: str(exc)}
        else:
            ack()
            return
        log.info("slack.edit_refused", user=_clicker(body), fields=sorted(errors))
        ack(response_action="errors", errors=errors)

    def tell_clicker(self, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Lazy: an ephemeral note to a clicker whose click changed nothing, saying why."""
        message = body.get("message") or {}
        _notify(client, context, str((body.get("channel") or {}).get("id")), _clicker(body), message)

    def tell_writer(self, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Lazy: an ephemeral note to a writer whose message started nothing, saying why."""
        event = body.get("event") or {}
        _notify(client, context, str(event.get("channel")), str(event.get("user")), event)

    def ask_reason(self, body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """Lazy: open the reject modal (its trigger id lives 3 seconds), or say why not."""
        wanted = context.get(REASON_WANTED)
        if not wanted:
            self.tell_clicker(body, context, client)
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=reason_modal(RequestRef.parse(wanted)))
        except SlackClientError as exc:
            log.warning("slack.modal_failed", user=_clicker(body), error=str(exc))

    def reason_given(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The reject modal was submitted: record the rejection, or show why not in the modal."""
        try:
            ref = RequestRef.parse(view.get("private_metadata"))
            self.answers.decide(ref, _clicker(body), approved=False, comment=reason_of(view))
        except (Refused, BadPayload) as exc:
            log.info("slack.rejection_refused", user=_clicker(body), reason=str(exc))
            ack(response_action="errors", errors={REASON_FIELD: str(exc)})
            return
        ack()

    def failed(self, error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        """A listener raised: Slack gets a 503 for an outage (``unavailable``), else a 500, and
        delivers the event again either way."""
        if self.unavailable(error):
            return BoltResponse(
                status=503,
                body=json.dumps({"detail": "the store is unavailable; try again later"}),
                headers={"Content-Type": "application/json", "Retry-After": str(RETRY_AFTER)},
            )
        log.error(
            "slack.listener_failed",
            error=f"{type(error).__name__}: {error}",
            payload_type=body.get("type"),
            event_id=body.get("event_id"),
        )
        return None
