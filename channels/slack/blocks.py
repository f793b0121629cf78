"""Block Kit for human contact, and text made safe for Slack's mrkdwn.

Everything the agent or a tool wrote is escaped before Slack sees it, so model
output can never ping a channel (``<!channel>``), mention someone or forge a link.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.approvals import call_digest
from agent.events import HumanRequest, HumanResponse, RequestExpired

APPROVE = "outerloop_approve"
REJECT = "outerloop_reject"
EDIT = "outerloop_edit"
"""The ``action_id`` of the Approve, Reject and Edit buttons."""
REASON_VIEW = "outerloop_reject_reason"
"""The ``callback_id`` of the modal that asks why a request is rejected."""
REASON_FIELD = "reason"
SECTION_LIMIT = 3000
"""The most characters a section block's text may hold."""
MESSAGE_LIMIT = 3900
"""Slack advises keeping a message's text under 4,000 characters; longer text is sent in parts."""

USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
"""A Slack user group (subteam) id, as approvers lists name groups."""

Block = dict[str, Any]


class BadPayload(ValueError):
    """A button value or modal the Slack channel did not make (or can no longer read)."""


def escape(text: str) -> str:
    """``text`` shown as written: Slack's control characters ``&``, ``<`` and ``>`` escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What a person typed, from the escaped text Slack sends in events."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at a line break, else a space,
    else anywhere but inside an escaped ``&amp;``, ``&lt;`` or ``&gt;``."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            entity = _PARTIAL_ENTITY.search(rest[:limit])
            cut = entity.start() if entity and entity.start() > 0 else limit
        parts.append(rest[:cut])
        rest = rest[cut:].removeprefix("\n").removeprefix(" ")
    parts.append(rest)
    return parts


_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def clip(mrkdwn: str, limit: int = SECTION_LIMIT) -> str:
    """Escaped text cut to ``limit`` characters without leaving half an ``&amp;`` behind."""
    if len(mrkdwn) <= limit:
        return mrkdwn
    return _PARTIAL_ENTITY.sub("", mrkdwn[: limit - 1]) + "…"


def mention(entry: str) -> str:
    """An approver or responder as Slack shows it: a user, a user group, or a plain name."""
    if USER_ID.fullmatch(entry):
        return f"<@{entry}>"
    if GROUP_ID.fullmatch(entry):
        return f"<!subteam^{entry}>"
    return escape(entry)


def when(at: datetime) -> str:
    """A timestamp each reader sees in their own time zone."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{at.isoformat()}>"


@dataclass(frozen=True)
class RequestRef:
    """Which request a button or modal answers, and the digest of the arguments it showed
    (``agent.approvals.digest``), so a click binds what the clicker saw; carried in the
    button's ``value`` and the modal's ``private_metadata``."""

    thread: str
    request: str
    digest: str | None = None
    """None in buttons made before approvals were bound to arguments: bound to them as they stand."""

    def value(self) -> str:
        ref = {"thread": self.thread, "request": self.request}
        return json.dumps(ref if self.digest is None else {**ref, "digest": self.digest})

    @classmethod
    def parse(cls, value: str | None) -> RequestRef:
        try:
            data = json.loads(value or "")
            digest = data.get("digest")
            return cls(
                thread=str(data["thread"]),
                request=str(data["request"]),
                digest=None if digest is None else str(digest),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadPayload(f"not an Outerloop request reference: {value!r}") from exc

    @classmethod
    def of(cls, thread_id: str, request: HumanRequest) -> RequestRef:
        """The reference a message showing ``request`` as it stands carries."""
        digest = call_digest(request.call) if request.call is not None else None
        return cls(thread_id, request.request_id, digest)


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn)}}


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn)}]}


def _who_may_answer(request: HumanRequest) -> str:
    if not request.approvers:
        return "Anyone here may answer."
    return "Who may answer: " + ", ".join(mention(entry) for entry in request.approvers)


def _request_blocks(request: HumanRequest) -> list[Block]:
    if request.kind == "question":
        return [_section(f":question: *Question*\n{escape(request.text)}")]
    blocks = [_section(f":raised_hand: *Approval needed*\n{escape(request.text)}")]
    if request.call is not None:
        blocks.append(
            _section(f"*Proposed:* `{escape(request.call.tool)}`\n{_arguments(request.call.arguments)}")
        )
    return blocks


def _arguments(arguments: dict[str, Any]) -> str:
    return f"```{escape(json.dumps(arguments, indent=2, ensure_ascii=False, sort_keys=True))}```"


def _progress(request: HumanRequest, approvals: tuple[str, ...], asked: HumanRequest | None) -> str | None:
    """How far a request that needs several approvers got, and whether an approver changed
    the arguments since it was first ``asked``."""
    if request.quorum <= 1:
        return None
    line = f"Needs {request.quorum} approvers."
    if approvals:
        who = ", ".join(mention(person) for person in approvals)
        line = f":hourglass_flowing_sand: {len(approvals)} of {request.quorum} approved by {who}."
    first = asked.call if asked is not None else None
    if first is not None and request.call is not None and first.arguments != request.call.arguments:
        line += " An approver changed the arguments above; approvals of the earlier ones do not count."
    return line


def fallback(request: HumanRequest) -> str:
    """The notification text of a request message (blocks are not shown in notifications)."""
    return clip(("Approval needed: " if request.kind == "approval" else "Question: ") + escape(request.text))


def request_message(
    thread_id: str,
    request: HumanRequest,
    approvals: tuple[str, ...] = (),
    asked: HumanRequest | None = None,
) -> list[Block]:
    """A question (answered by replying in the thread) or an approval with Approve, Edit and
    Reject buttons, showing the call as it stands, who approved it so far (``approvals``),
    and whether its arguments changed since it was first ``asked``."""
    blocks = _request_blocks(request)
    if request.kind == "question":
        return [*blocks, _context(f"Reply in this thread to answer. {_who_may_answer(request)}")]
    ref = RequestRef.of(thread_id, request).value()
    edit = "Edit or approve for longer" if request.standing else "Edit"
    buttons = [
        _button(APPROVE, "Approve", ref, "primary"),
        _button(EDIT, edit, ref),
        _button(REJECT, "Reject", ref, "danger"),
    ]
    progress = _progress(request, approvals, asked)
    notes = [_context(_who_may_answer(request)), *([_context(progress)] if progress else [])]
    return [*blocks, *notes, {"type": "actions", "elements": buttons}]


def _button(action_id: str, text: str, value: str, style: str | None = None) -> Block:
    button = {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}}
    return {**button, "value": value, **({"style": style} if style else {})}


def verdict(response: HumanResponse) -> str:
    """One line saying who decided what, when (and under which standing approval)."""
    who, at = mention(response.responder), when(response.at)
    if response.under is not None:
        grant = response.under
        line = (
            f":white_check_mark: Approved {at} under the standing approval `{grant.grant_id}` "
            f"given by {who} ({_scope(grant.scope)}), so nobody was asked"
        )
    elif response.approved is True and response.arguments is not None:
        line = f":white_check_mark: Approved with changed arguments by {who} {at}"
    elif response.approved is True:
        line = f":white_check_mark: Approved by {who} {at}"
    elif response.approved is False:
        line = f":x: Rejected by {who} {at}"
    else:
        line = f":speech_balloon: Answered by {who} {at}"
    said = response.answer or response.comment
    return f"{line}: {escape(said)}" if said else line


def _scope(scope: str) -> str:
    return {"thread": "this tool in its thread", "call": "these exact arguments", "tool": "this tool"}[scope]


def decided_message(request: HumanRequest, response: HumanResponse) -> list[Block]:
    """The request message once answered: the buttons replaced by the decision, and the
    arguments the call runs with when the approver changed them."""
    blocks = [*_request_blocks(request), _context(verdict(response))]
    if response.arguments is not None:
        blocks.append(_section(f"*Runs with:*\n{_arguments(response.arguments)}"))
    if response.gives is not None:
        grant = response.gives
        until = f" until {when(grant.until)}" if grant.until is not None else ""
        by = mention(response.responder)
        blocks.append(
            _context(f"Standing approval `{grant.grant_id}` for {_scope(grant.scope)}{until}, by {by}.")
        )
    return blocks


def expiry_notice(expired: RequestExpired) -> str:
    """The thread message of a reminder or an escalation; it mentions who is asked now."""
    who = ", ".join(mention(entry) for entry in expired.approvers) or "anyone here"
    if expired.outcome == "escalated":
        return f":arrow_up: Nobody answered in time, so the request above now goes to {who}."
    return f":alarm_clock: Reminder: the request above still waits for an answer from {who}."


def timed_out_message(request: HumanRequest, expired: RequestExpired) -> list[Block]:
    """The request message once it timed out: the buttons replaced by the time-out."""
    line = f":hourglass: Nobody answered by {when(expired.deadline)}; the request timed out."
    return [*_request_blocks(request), _context(line)]


def modal(callback_id: str, ref: RequestRef, verb: str, blocks: list[Block]) -> dict[str, Any]:
    """A modal about the request ``ref`` names, whose submit button says ``verb``."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": ref.value(),
        "title": {"type": "plain_text", "text": verb},
        "submit": {"type": "plain_text", "text": verb},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def reason_modal(ref: RequestRef) -> dict[str, Any]:
    """The modal a Reject click opens, asking why."""
    return modal(
        REASON_VIEW,
        ref,
        "Reject",
        [
            {
                "type": "input",
                "block_id": REASON_FIELD,
                "label": {"type": "plain_text", "text": "Why not?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_FIELD,
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    )


def reason_of(view: dict[str, Any]) -> str:
    """The reason typed into a submitted ``reason_modal``."""
    try:
        value = view["state"]["values"][REASON_FIELD][REASON_FIELD]["value"]
    except (KeyError, TypeError) as exc:
        raise BadPayload("the reject modal came back without a reason field") from exc
    return str(value or "").strip()
