"""A pending approval as the thread page shows it, and the approver's edited answer read back.

The page offers what ``Runtime.respond`` would accept and says why it offers no more: who
approved so far against the quorum, a form to edit the call's arguments (the fields of
``channels.argument_form``, as the Slack Edit modal has them) with a standing scope where the
tool's policy allows one, and the reason a person may not approve. Every form carries the
digest of the arguments it showed, so an answer to arguments changed since is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.approvals import Standing, call_digest, excluded, may_answer
from agent.events import HumanRequest
from agent.thread import Thread
from agent.tools import InvalidArguments
from channels.argument_form import (
    SCOPES,
    ArgumentField,
    FieldErrors,
    argument_fields,
    read_arguments,
    read_standing,
)

ARGUMENT = "arg."
"""The form name prefix of an argument's field (followed by the argument's name)."""
SCOPE = "scope"
HOURS = "hours"


@dataclass(frozen=True)
class Approval:
    """What the thread page shows of the pending approval of a call, for one person."""

    request: HumanRequest
    digest: str
    approvals: tuple[str, ...]
    """Who approved the call as it stands, towards ``request.quorum``."""
    edited: bool
    """An approver changed the arguments since the request was first asked."""
    fields: list[ArgumentField]
    """The edit form's fields; empty when the tool's arguments cannot be edited here."""
    refusal: str | None
    """Why this person may not approve the call (None: they may)."""

    @property
    def scopes(self) -> dict[str, str]:
        return SCOPES if self.request.standing else {}

    @property
    def progress(self) -> str | None:
        """ "1 of 2 approved by alice", for a call that needs more than one approver."""
        if self.request.quorum <= 1:
            return None
        if not self.approvals:
            return f"Needs {self.request.quorum} approvers; none approved yet."
        who = ", ".join(self.approvals)
        return f"{len(self.approvals)} of {self.request.quorum} approved by {who}."


def approval_of(thread: Thread, person: str, schema: dict[str, Any] | None) -> Approval | None:
    """The pending approval of ``thread`` as ``person`` sees it; None when none waits."""
    pending = thread.pending
    if pending is None or pending.kind != "approval" or pending.call is None:
        return None
    first = thread.events.first_request(pending.request_id)
    asked = first.call if first is not None else None
    return Approval(
        request=pending,
        digest=call_digest(pending.call),
        approvals=thread.approvals,
        edited=asked is not None and asked.arguments != pending.call.arguments,
        fields=argument_fields(schema, pending.call.arguments) if schema is not None else [],
        refusal=refusal(thread, pending, person),
    )


def refusal(thread: Thread, request: HumanRequest, person: str) -> str | None:
    """Why ``person`` may not approve ``request`` now, in words for them; None if they may."""
    if not may_answer(request, person):
        return f"it asks {', '.join(request.approvers)}"
    if excluded(request, person):
        return (
            "you asked for this call (you started the thread or wrote the message that led to it), so "
            "another approver must approve it: separation of duties"
        )
    if person in thread.approvals:
        waiting = request.quorum - len(thread.approvals)
        return f"you approved this already; it waits for {waiting} more approver(s)"
    return None


def read_edit(form: Mapping[str, str], schema: dict[str, Any]) -> tuple[dict[str, Any], Standing | None]:
    """The arguments and the standing scope a submitted edit form asks for; raises
    ``FieldErrors`` (by form field name) for what cannot be read."""
    arguments, problems = read_arguments(schema, lambda name: form.get(ARGUMENT + name))
    errors = {ARGUMENT + name: problem for name, problem in problems.items()}
    standing = None
    try:
        standing = read_standing(form.get(SCOPE), form.get(HOURS))
    except ValueError as exc:
        errors[HOURS] = str(exc)
    if errors:
        raise FieldErrors(errors)
    return arguments, standing


def field_problems(error: Exception) -> dict[str, str]:
    """What ``error`` says is wrong, by the form field it is wrong in (``""``: the whole form)."""
    if isinstance(error, FieldErrors):
        return error.errors
    if isinstance(error, InvalidArguments):
        return {(ARGUMENT + name if name else ""): problem for name, problem in error.problems.items()}
    return {}
