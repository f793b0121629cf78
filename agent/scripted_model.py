"""Models without an LLM: canned decisions for tests, demos and offline local runs.

``ScriptedModel`` reads rules from a JSON file: each rule names the kind of event
it answers (``after``) and the tool call to make, so any worker process can answer
any thread from the thread alone. ``SequenceModel`` replays a fixed list of answers
in order, for tests that need exact control (including failures).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from string import Template
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from agent.events import Error, Event, HumanResponse, RequestExpired, ToolResult, Trigger
from agent.history import History
from agent.model import ModelCall, ModelError, ModelOutputInvalid, ModelRequest

Kind = TypeVar("Kind", bound=Event)


class Rule(BaseModel):
    after: str = Field(
        description=(
            "The last meaningful event this rule answers: 'trigger', 'tool_result:<tool>', "
            "'error', 'human_response:approved|rejected|answered', 'request_expired' (a request "
            "that timed out), a bare type, or '*'."
        )
    )
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    """String values may use ${trigger}, ${result}, ${result_first_line}, ${answer}."""


class Capture(BaseModel):
    """A value taken from the request's text, so a script can follow what was asked."""

    pattern: str = Field(
        description="A regular expression; its first group, else the whole match, is the value."
    )
    default: str = ""
    """The value when the text does not match; may use the variables rules use."""


class Script(BaseModel):
    rules: list[Rule]
    captures: dict[str, Capture] = Field(default_factory=dict)
    """Named values from the trigger (``${name}`` in rules), e.g. the tag a request names."""


def signature(event: Event) -> str | None:
    """What a rule's ``after`` is matched against; None for events rules never answer."""
    match event:
        case Trigger():
            return "trigger"
        case ToolResult(tool=tool):
            return f"tool_result:{tool}"
        case Error(source=source):
            return f"error:{source}"
        case HumanResponse(approved=True):
            return "human_response:approved"
        case HumanResponse(approved=False):
            return "human_response:rejected"
        case HumanResponse():
            return "human_response:answered"
        case RequestExpired(outcome="timed_out"):
            return "request_expired"
        case _:
            return None


class ScriptedModel:
    def __init__(self, rules: Iterable[Rule], captures: Mapping[str, Capture] | None = None) -> None:
        self.rules = list(rules)
        self.captures = dict(captures or {})

    @classmethod
    def from_file(cls, path: Path) -> ScriptedModel:
        script = Script.model_validate_json(path.read_text(encoding="utf-8"))
        return cls(script.rules, script.captures)

    def decide(self, request: ModelRequest) -> ModelCall:
        # Like the rendered context, a rule never answers a response the thread ignored. Both
        # look back from the newest event, so deciding costs the same on a thread of any length.
        events = request.thread.events
        last = next((s for e in events.heeded_reversed() if (s := signature(e)) is not None), None)
        if last is None:
            raise ModelOutputInvalid("scripted model: the thread has nothing to answer")
        for rule in self.rules:
            if rule.after in ("*", last, last.split(":", 1)[0]):
                return ModelCall(rule.tool, _fill(rule.arguments, self._variables(events)))
        raise ModelOutputInvalid(f"scripted model: no rule answers {last!r}")

    def _variables(self, events: History) -> dict[str, str]:
        variables = _variables(events)
        for name, capture in self.captures.items():
            found = re.search(capture.pattern, variables["trigger"], re.IGNORECASE)
            value = (found.group(1) if found.groups() else found.group(0)) if found else None
            variables[name] = value if value is not None else _fill(capture.default, variables)
        return variables


def _variables(events: History) -> dict[str, str]:
    """The values rules may use, from the newest heeded trigger, tool result and response
    (found by the history's indexes, not by a pass over the thread)."""
    trigger = _last(events, "trigger", Trigger)
    result = _last(events, "tool_result", ToolResult)
    response = _last(events, "human_response", HumanResponse)
    answer = (response.answer or response.comment or "") if response else ""
    output = result.output.strip() if result else ""
    first_line = output.splitlines()[0] if output else ""
    return {
        "trigger": trigger.text if trigger else "",
        "result": result.output if result else "",
        "result_first_line": first_line,
        "answer": answer,
    }


def _last(events: History, key: str, kind: type[Kind]) -> Kind | None:
    position = events.last_of(key)
    if position < 0:
        return None
    event = events[position]
    assert isinstance(event, kind)
    return event


def _fill(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return Template(value).safe_substitute(variables)
    if isinstance(value, dict):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


class SequenceModel:
    """Answers with the given calls in order; a ``ModelError`` in the list is raised instead."""

    def __init__(self, answers: Iterable[ModelCall | ModelError]) -> None:
        self.answers = list(answers)
        self.requests: list[ModelRequest] = []

    def decide(self, request: ModelRequest) -> ModelCall:
        self.requests.append(request)
        if not self.answers:
            raise ModelOutputInvalid("sequence model: no answers left")
        answer = self.answers.pop(0)
        if isinstance(answer, ModelError):
            raise answer
        return answer
