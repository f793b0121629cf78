"""The Grafana dashboard in the repository asks only for metrics that exist, by labels they have."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import bot.metrics
from bot.metrics import instruments
from bot.metrics.exposition import render
from bot.runtime import Runtime

DASHBOARD = Path(bot.metrics.__file__).parent / "dashboard.json"
NAME = re.compile(r"\b(outerloop_[a-z_]+)\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def expressions(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]["query"]


def exposed(runtime: Runtime) -> dict[str, set[str]]:
    """Every series name a scrape can hold, with the labels it may carry."""
    labels = {
        metric._name: set(metric._labelnames)
        for metric in vars(instruments).values()
        if isinstance(metric, MetricWrapperBase)
    }
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(render(runtime.connection).decode()):
        carried = labels.get(family.name, set()) | {key for s in family.samples for key in s.labels}
        for suffix in SUFFIXES.get(family.type, ("",)):
            names[family.name + suffix] = carried | ({"le"} if suffix == "_bucket" else set())
    return names


def test_every_dashboard_expression_names_metrics_that_exist_by_their_labels(runtime: Runtime) -> None:
    known = exposed(runtime)
    dashboard = json.loads(DASHBOARD.read_text())
    checked = 0
    for expr in expressions(dashboard):
        used = NAME.findall(expr)
        assert used, f"no outerloop metric in {expr!r}"
        unknown = [name for name in used if name not in known]
        assert not unknown, f"{expr!r} names metrics that do not exist: {unknown}"
        available = set().union(*(known[name] for name in used))
        for grouping in GROUPING.findall(expr):
            missing = {label.strip() for label in grouping.split(",")} - available
            assert not missing, f"{expr!r} groups by labels its metrics lack: {missing}"
        assert expr.count("(") == expr.count(")"), expr
        checked += 1
    assert checked >= 20


def test_the_dashboard_covers_every_metric(runtime: Runtime) -> None:
    used = {name for expr in expressions(json.loads(DASHBOARD.read_text())) for name in NAME.findall(expr)}
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used}
    for metric in vars(instruments).values():
        if isinstance(metric, MetricWrapperBase):
            assert metric._name in families, f"{metric._name} is on no panel"
