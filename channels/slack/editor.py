"""The Edit modal: a call's arguments as a form built from the tool's JSON schema, prefilled.

The fields and how their values are read back are ``channels.argument_form``'s, shared with
the web console; this module makes them Slack inputs: a select for a choice, a number input,
a text input, and multiline JSON text for anything nested. When the tool's policy allows
standing approvals, the modal also asks how far the approval reaches.
"""

from __future__ import annotations

from typing import Any

from agent.approvals import Standing
from agent.events import HumanRequest
from channels.argument_form import (
    SCOPES,
    ArgumentField,
    FieldErrors,
    argument_fields,
    choice_value,
    read_arguments,
    read_standing,
)
from channels.slack.blocks import BadPayload, Block, RequestRef, escape, modal

EDIT_VIEW = "outerloop_edit_arguments"
"""The ``callback_id`` of the Edit modal."""
FIELD = "arg:"
"""The ``block_id`` prefix of an argument's input (followed by its name)."""
SCOPE = "scope"
HOURS = "hours"
TEXT_LIMIT = 3000
"""The most characters a plain text input may be prefilled with."""
Schema = dict[str, Any]


def edit_modal(ref: RequestRef, request: HumanRequest, schema: Schema) -> dict[str, Any]:
    """The modal an Edit click opens for ``request``, an approval of a call."""
    if request.call is None:
        raise BadPayload(f"request {request.request_id} approves no call, so it has no arguments to edit")
    blocks = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"Approve `{escape(request.call.tool)}` with these arguments:",
            },
        },
        *(_input(field) for field in argument_fields(schema, request.call.arguments)),
    ]
    if request.standing:
        blocks += _scope_inputs()
    return modal(EDIT_VIEW, ref, "Approve", blocks)


def _input(field: ArgumentField) -> Block:
    element: Block
    text = field.text
    if field.kind == "select":
        options = [_option(choice_value(choice), str(choice)) for choice in field.choices]
        element = {"type": "static_select", "options": options}
        if text is not None:
            element["initial_option"] = _option(text, str(field.value))
    elif field.kind == "number":
        element = {"type": "number_input", "is_decimal_allowed": field.decimal}
        if text is not None:
            element["initial_value"] = text
    else:
        element = {"type": "plain_text_input", "multiline": field.kind == "json"}
        if text is not None and len(text) <= TEXT_LIMIT:
            element["initial_value"] = text
    block: Block = {
        "type": "input",
        "block_id": FIELD + field.name,
        "optional": not field.required,
        "label": {"type": "plain_text", "text": field.label[:2000]},
        "element": {**element, "action_id": "value"},
    }
    if field.hint:
        block["hint"] = {"type": "plain_text", "text": field.hint[:2000]}
    return block


def _option(value: str, text: str) -> Block:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value[:150]}


def _scope_inputs() -> list[Block]:
    options = [_option(scope, text) for scope, text in SCOPES.items()]
    return [
        {
            "type": "input",
            "block_id": SCOPE,
            "label": {"type": "plain_text", "text": "Approve for"},
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "options": options,
                "initial_option": options[0],
            },
        },
        {
            "type": "input",
            "block_id": HOURS,
            "optional": True,
            "label": {"type": "plain_text", "text": "For how many hours"},
            "hint": {
                "type": "plain_text",
                "text": "Needed for a whole tool; without it, the others last until revoked.",
            },
            "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": True},
        },
    ]


def edited(view: dict[str, Any], schema: Schema) -> tuple[dict[str, Any], Standing | None]:
    """The arguments and the standing scope a submitted ``edit_modal`` asks for; raises
    ``FieldErrors`` for an input that cannot be read, ``BadPayload`` for a form we did not make."""
    try:
        values: dict[str, Any] = view["state"]["values"]
    except (KeyError, TypeError) as exc:
        raise BadPayload("the edit modal came back without its inputs") from exc
    arguments, problems = read_arguments(schema, lambda name: _text(_state(values, FIELD + name)))
    errors = {FIELD + name: problem for name, problem in problems.items()}
    standing = None
    if SCOPE in values:
        try:
            standing = read_standing(_text(_state(values, SCOPE)), _text(_state(values, HOURS)))
        except ValueError as exc:
            errors[HOURS] = str(exc)
    if errors:
        raise FieldErrors(errors)
    return arguments, standing


def _state(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    state = (values.get(block_id) or {}).get("value")
    return state if isinstance(state, dict) else {}


def _text(state: dict[str, Any]) -> str | None:
    """What an input holds as text: a typed value, or the value of the option chosen."""
    selected = state.get("selected_option")
    if isinstance(selected, dict):
        value = selected.get("value")
        return str(value) if value is not None else None
    value = state.get("value")
    return str(value) if value is not None else None
