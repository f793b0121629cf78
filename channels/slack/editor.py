"""The Edit modal: a call's arguments as a form built from the tool's JSON schema, prefilled.

Each top-level argument becomes one input: a select for an enum or a boolean, a number
input for a number, a text input for a string, and JSON text for anything nested. What
comes back is read into plain JSON values and handed on as the edited arguments; the
tool's model (in the runtime) is the judge of whether they are valid. When the tool's
policy allows standing approvals, the modal also asks how far the approval reaches.
"""

from __future__ import annotations

import json
from typing import Any, cast, get_args

from agent.approvals import Standing
from agent.events import GrantScope, HumanRequest
from channels.slack.blocks import BadPayload, Block, RequestRef, escape, modal

EDIT_VIEW = "outerloop_edit_arguments"
"""The ``callback_id`` of the Edit modal."""
FIELD = "arg:"
"""The ``block_id`` prefix of an argument's input (followed by its name)."""
SCOPE = "scope"
HOURS = "hours"
ONCE = "once"
"""The scope choice that approves this call only."""
SCOPES = {
    ONCE: "Only this call",
    "call": "This call with exactly these arguments, whenever it comes again in this thread",
    "thread": "Every call of this tool in this thread",
    "tool": "Every call of this tool by this agent, in any thread, for the hours below",
}
GRANT_SCOPES = get_args(GrantScope)
TEXT_LIMIT = 3000
"""The most characters a plain text input may be prefilled with."""
Schema = dict[str, Any]


class FieldErrors(ValueError):
    """What is wrong with a submitted form, by the ``block_id`` of the input it is wrong in."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def edit_modal(ref: RequestRef, request: HumanRequest, schema: Schema) -> dict[str, Any]:
    """The modal an Edit click opens for ``request``, an approval of a call."""
    if request.call is None:
        raise BadPayload(f"request {request.request_id} approves no call, so it has no arguments to edit")
    properties: dict[str, Schema] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    arguments = request.call.arguments
    blocks = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"Approve `{escape(request.call.tool)}` with these arguments:",
            },
        },
        *(
            _input(name, _resolved(prop, schema), arguments.get(name), name in required)
            for name, prop in properties.items()
        ),
    ]
    if request.standing:
        blocks += _scope_inputs()
    return modal(EDIT_VIEW, ref, "Approve", blocks)


def _resolved(prop: Schema, schema: Schema) -> Schema:
    """``prop`` with a ``$ref`` to the schema's ``$defs`` (an Enum class) looked up."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**(schema.get("$defs") or {}).get(ref.removeprefix("#/$defs/"), {}), **prop}
    return prop


def _kind(prop: Schema) -> str:
    if "enum" in prop or prop.get("type") == "boolean":
        return "select"
    if prop.get("type") in ("integer", "number"):
        return "number"
    if prop.get("type") == "string":
        return "text"
    return "json"


def _input(name: str, prop: Schema, value: Any, required: bool) -> Block:
    kind = _kind(prop)
    element: Block
    if kind == "select":
        choices = prop.get("enum", [True, False])
        options = [_option(json.dumps(choice), str(choice)) for choice in choices]
        element = {"type": "static_select", "options": options}
        if value in choices:
            element["initial_option"] = _option(json.dumps(value), str(value))
    elif kind == "number":
        element = {"type": "number_input", "is_decimal_allowed": prop.get("type") == "number"}
        if isinstance(value, int | float) and not isinstance(value, bool):
            element["initial_value"] = str(value)
    else:
        text = value if kind == "text" and isinstance(value, str) else None
        if kind == "json" and value is not None:
            text = json.dumps(value, ensure_ascii=False)
        element = {"type": "plain_text_input", "multiline": kind == "json"}
        if text is not None and len(text) <= TEXT_LIMIT:
            element["initial_value"] = text
    block: Block = {
        "type": "input",
        "block_id": FIELD + name,
        "optional": not required,
        "label": {"type": "plain_text", "text": str(prop.get("title") or name)[:2000]},
        "element": {**element, "action_id": "value"},
    }
    if prop.get("description"):
        block["hint"] = {"type": "plain_text", "text": str(prop["description"])[:2000]}
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
    properties: dict[str, Schema] = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, prop in properties.items():
        field = _state(values, FIELD + name)
        try:
            value = _read(_kind(_resolved(prop, schema)), field)
        except ValueError as exc:
            errors[FIELD + name] = str(exc)
            continue
        if value is not None:
            arguments[name] = value
    standing = None
    if SCOPE in values:
        try:
            standing = _standing(_state(values, SCOPE), _state(values, HOURS))
        except ValueError as exc:
            errors[HOURS] = str(exc)
    if errors:
        raise FieldErrors(errors)
    return arguments, standing


def _state(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    state = (values.get(block_id) or {}).get("value")
    return state if isinstance(state, dict) else {}


def _read(kind: str, field: dict[str, Any]) -> Any:
    """A field's value as JSON; None when left empty (the tool's default applies)."""
    if kind == "select":
        selected = field.get("selected_option") or {}
        return json.loads(selected["value"]) if "value" in selected else None
    text = field.get("value")
    if text is None or not str(text).strip():
        return None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return int(number) if number.is_integer() and "." not in str(text) else number
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError('write this as JSON, such as [1, 2] or {"key": "value"}') from None
    return str(text)


def _standing(scope_field: dict[str, Any], hours_field: dict[str, Any]) -> Standing | None:
    scope = (scope_field.get("selected_option") or {}).get("value") or ONCE
    hours = _read("number", hours_field)
    if scope == ONCE:
        return None
    if scope not in GRANT_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    if scope == "tool" and hours is None:
        raise ValueError("say for how many hours the whole tool is approved")
    return Standing(scope=cast(GrantScope, scope), hours=float(hours) if hours is not None else None)
