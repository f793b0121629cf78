"""Trigger configuration files (TOML), and where a triggered thread reports to.

Schedules and webhooks are declared as named tables, ``[schedules.<name>]`` and
``[webhooks.<name>]``; a mistake is a ``ConfigError`` naming the file, the entry and
the field, raised when the process starts rather than when the trigger fires.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from agent.events import Origin

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A schedule or webhook name: it appears in URLs and dedupe keys."""

Entry = TypeVar("Entry", bound=BaseModel)


class ConfigError(ValueError):
    """A trigger configuration file is missing or wrong; the message says where and what."""


def load_entries(path: Path, section: str, model: type[Entry]) -> dict[str, Entry]:
    """The ``[section.<name>]`` tables of the TOML file at ``path``, validated, by name."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    unknown = set(document) - {section}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level keys {sorted(unknown)}; put entries under [{section}.NAME]"
        )
    tables: Any = document.get(section, {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: {section} must hold tables, [{section}.NAME]")
    entries: dict[str, Entry] = {}
    for name, table in tables.items():
        where = f"{path}: [{section}.{name}]"
        if not NAME.match(name):
            raise ConfigError(f"{where}: names are letters, digits, '_', '.' and '-', at most 64")
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table of settings")
        try:
            entries[name] = model.model_validate({**table, "name": name})
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_problems(exc)}") from exc
    return entries


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(entry)'}: {e['msg']}" for e in error.errors())


# Any local@domain, as the inbox takes (``outerloop@localhost`` included).
_REPORT_TO = re.compile(r"^(?:slack:(?P<channel>[A-Za-z0-9_-]+)|email:(?P<to>[^@\s]+@[^@\s]+))$")


def _check_report_to(value: str) -> str:
    if not _REPORT_TO.match(value):
        raise ValueError(f"{value!r} is not 'slack:CHANNEL_ID' or 'email:ADDRESS'")
    return value


ReportTo = Annotated[str, AfterValidator(_check_report_to)]
"""Where a triggered thread's messages and requests go: ``slack:C0123`` or ``email:ops@example.com``."""


def report_origin(report_to: ReportTo, sender: str) -> Origin:
    """The trigger origin that makes the Slack or email channel post a thread's messages
    to ``report_to`` (a new top-level Slack message, a fresh email)."""
    match = _REPORT_TO.match(report_to)
    if match is None:
        raise ValueError(f"{report_to!r} is not 'slack:CHANNEL_ID' or 'email:ADDRESS'")
    if match["channel"]:
        return Origin(channel="slack", sender=sender, address={"channel": match["channel"]})
    return Origin(channel="email", sender=sender, address={"to": match["to"]})
