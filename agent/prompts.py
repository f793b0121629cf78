"""Prompt templates: text files shipped in the package, filled in by our own code (factor 2)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template


class PromptError(KeyError):
    """A template names a value the caller did not supply."""


@cache
def template(name: str) -> Template:
    """The template ``agent/prompts/<name>.md``."""
    text = (resources.files("agent") / "prompts" / f"{name}.md").read_text(encoding="utf-8")
    return Template(text)


def render(name: str, **values: object) -> str:
    try:
        return template(name).substitute(values).strip() + "\n"
    except KeyError as exc:
        raise PromptError(f"prompt {name!r} needs a value for {exc.args[0]!r}") from None
