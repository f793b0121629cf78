"""A call's arguments as a form: fields built from the tool's JSON schema, and text read back.

Every door that lets an approver edit a call before approving it (the Slack Edit modal, the
web console) draws the same fields from the same schema and reads what comes back the same
way; only the widgets differ. Each top-level argument is one field: a choice for an enum or
a boolean, a number, a line of text for a string, and JSON text for anything nested. What is
read is plain JSON values; the tool's model (in the runtime) judges whether they are valid.
The standing scope an approver may add (``agent.approvals.Standing``) is read here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from agent.approvals import Standing
from agent.events import GrantScope

Schema = dict[str, Any]
Kind = Literal["select", "number", "text", "json"]
ONCE = "once"
"""The scope choice that approves this call only."""
SCOPES = {
    ONCE: "Only this call",
    "call": "This call with exactly these arguments, whenever it comes again in this thread",
    "thread": "Every call of this tool in this thread",
    "tool": "Every call of this tool by this agent, in any thread, for the hours below",
}
GRANT_SCOPES = get_args(GrantScope)


class FieldErrors(ValueError):
    """What is wrong with a submitted form, by the name of the input it is wrong in."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class ArgumentField:
    """One argument of a call, as a form shows it."""

    name: str
    kind: Kind
    label: str
    hint: str | None
    required: bool
    value: Any
    """The value the call proposes (None when it has none)."""
    choices: tuple[Any, ...] = ()
    """For a ``select``: the JSON values it offers."""
    decimal: bool = False
    """For a ``number``: whether it takes fractions."""

    @property
    def text(self) -> str | None:
        """The proposed value as the field's text, or None when there is nothing to prefill."""
        value = self.value
        if self.kind == "select":
            return choice_value(value) if value in self.choices else None
        if self.kind == "number":
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return str(value) if is_number else None
        if self.kind == "text":
            return value if isinstance(value, str) else None
        return json.dumps(value, ensure_ascii=False) if value is not None else None


def choice_value(choice: Any) -> str:
    """How a choice travels in a form: as its JSON text, so ``true`` and ``"true"`` differ."""
    return json.dumps(choice)


def argument_fields(schema: Schema, arguments: Mapping[str, Any]) -> list[ArgumentField]:
    """The fields of a form that edits ``arguments``, one per property of ``schema``."""
    properties: dict[str, Schema] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields = []
    for name, raw in properties.items():
        prop = _resolved(raw, schema)
        kind = _kind(prop)
        fields.append(
            ArgumentField(
                name=name,
                kind=kind,
                label=str(prop.get("title") or name),
                hint=str(prop["description"]) if prop.get("description") else None,
                required=name in required,
                value=arguments.get(name),
                choices=tuple(prop.get("enum", [True, False])) if kind == "select" else (),
                decimal=prop.get("type") == "number",
            )
        )
    return fields


def _resolved(prop: Schema, schema: Schema) -> Schema:
    """``prop`` with a ``$ref`` to the schema's ``$defs`` (an Enum class) looked up."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**(schema.get("$defs") or {}).get(ref.removeprefix("#/$defs/"), {}), **prop}
    return prop


def _kind(prop: Schema) -> Kind:
    if "enum" in prop or prop.get("type") == "boolean":
        return "select"
    if prop.get("type") in ("integer", "number"):
        return "number"
    if prop.get("type") == "string":
        return "text"
    return "json"


def read_value(kind: Kind, text: str | None) -> Any:
    """A field's submitted text as a JSON value; None when left empty (the tool's default
    applies). Raises ``ValueError`` with a message for the person who typed it."""
    if text is None or not text.strip():
        return None
    if kind == "select":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("choose one of the offered values") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return int(number) if number.is_integer() and "." not in text else number
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError('write this as JSON, such as [1, 2] or {"key": "value"}') from None
    return text


def read_arguments(
    schema: Schema, text_of: Callable[[str], str | None]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The arguments a submitted form holds (``text_of`` gives a field's text by its argument's
    name), and what could not be read, by argument name. Fields left empty are left out."""
    arguments: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in argument_fields(schema, {}):
        try:
            value = read_value(field.kind, text_of(field.name))
        except ValueError as exc:
            errors[field.name] = str(exc)
            continue
        if value is not None:
            arguments[field.name] = value
    return arguments, errors


def read_standing(scope: str | None, hours: str | None) -> Standing | None:
    """The standing scope chosen (None: this call only); raises ``ValueError`` saying what is missing."""
    chosen = scope or ONCE
    length = read_value("number", hours)
    if chosen == ONCE:
        return None
    if chosen not in GRANT_SCOPES:
        raise ValueError(f"unknown scope {chosen!r}")
    if chosen == "tool" and length is None:
        raise ValueError("say for how many hours the whole tool is approved")
    return Standing(scope=cast(GrantScope, chosen), hours=float(length) if length is not None else None)
