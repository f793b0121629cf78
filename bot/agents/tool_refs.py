"""Python code named in agent files as ``module:function``: tools and prefetch hooks.

A tool function either takes one pydantic model (its arguments) or plain keyword
parameters with type hints, from which the arguments model is built; its docstring's first
line is the tool's description unless the file gives one.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, cast

from pydantic import BaseModel, create_model

from agent.definition import Prefetch
from agent.tools import Policy, Tool


class BadReference(ValueError):
    """A ``module:function`` that cannot be imported or is not a function."""


def resolve(reference: str) -> Callable[..., Any]:
    module_name, colon, attribute = reference.partition(":")
    if not (colon and module_name and attribute):
        raise BadReference(f"{reference!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadReference(f"cannot import {module_name} ({exc}); is it on the path?") from exc
    target = getattr(module, attribute, None)
    if not callable(target):
        raise BadReference(f"{module_name} has no function {attribute!r}")
    return cast(Callable[..., Any], target)


def python_tool(
    reference: str, policy: Policy, name: str | None = None, description: str | None = None
) -> Tool:
    function = resolve(reference)
    model, takes_model = arguments_of(function)
    summary = description or (inspect.getdoc(function) or "").split("\n\n", 1)[0].strip()

    def handler(arguments: BaseModel) -> object:
        if takes_model:
            return function(arguments)
        return function(**{field: getattr(arguments, field) for field in type(arguments).model_fields})

    return Tool(name or function.__name__, summary or function.__name__, model, handler, policy)


def arguments_of(function: Callable[..., Any]) -> tuple[type[BaseModel], bool]:
    """The function's arguments model, and whether it takes that model itself."""
    parameters = list(inspect.signature(function, eval_str=True).parameters.values())
    if len(parameters) == 1:
        hint = parameters[0].annotation
        if inspect.isclass(hint) and issubclass(hint, BaseModel):
            return hint, True
    fields: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise BadReference(f"{function.__name__} takes *args or **kwargs; name its parameters")
        hint = Any if parameter.annotation is parameter.empty else parameter.annotation
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hint, default)
    model = create_model(f"{function.__name__}_arguments", **fields)
    model.__doc__ = inspect.getdoc(function)
    return model, False


def python_prefetch(reference: str) -> Prefetch:
    """A hook called with the thread, returning a ``Context`` event or None."""
    return cast(Prefetch, resolve(reference))
