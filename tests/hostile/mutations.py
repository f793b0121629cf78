"""Hypothesis strategies that take a well-formed payload and break it a little: a field replaced by
any JSON value, a field removed, a field added. Most of a mutated payload stays plausible, so the
code behind the first checks gets exercised too."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

JSON = dict[str, Any]
Path = tuple[str | int, ...]
REMOVE = object()
"""A mutation that deletes the field instead of replacing it."""

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
).map(lambda value: value.strip(" "))
"""What a client can put in a header: printable Latin-1, no line breaks, no space around it."""


def paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every field and list item of ``value``, as paths from the root."""
    children: list[tuple[str | int, Any]] = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    return [path for key, child in children for path in ((*prefix, key), *paths(child, (*prefix, key)))]


def _apply(payload: JSON, changes: list[tuple[Path, Any]]) -> JSON:
    changed = copy.deepcopy(payload)
    for path, new in changes:
        parent: Any = changed
        for step in path[:-1]:
            parent = _child(parent, step)
        last = path[-1]
        if isinstance(parent, dict) and new is REMOVE:
            parent.pop(last, None)
        elif isinstance(parent, dict):
            parent[last] = new
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent) and new is not REMOVE:
            parent[last] = new  # a list item is replaced, never removed: the indexes stay valid
    return changed


def _child(parent: Any, step: str | int) -> Any:
    """``parent[step]``, or None when an earlier change removed or replaced that part."""
    if isinstance(parent, dict):
        return parent.get(step)
    if isinstance(parent, list) and isinstance(step, int) and step < len(parent):
        return parent[step]
    return None


def mutated(payload: JSON) -> st.SearchStrategy[JSON]:
    """``payload`` with one to three fields replaced by any JSON value or removed, or a field added."""
    change = st.tuples(st.sampled_from(paths(payload)), json_values | st.just(REMOVE))
    added = st.tuples(st.text(max_size=10).map(lambda key: (key,)), json_values)
    return st.lists(change | added, min_size=1, max_size=3).map(lambda changes: _apply(payload, changes))
