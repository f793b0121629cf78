"""The deploy thread of ``python -m bench peer`` as a LangGraph graph (needs the ``bench`` extra).

The same thread as the ``deploy`` bench agent: a decision picks the next action (as the
scripted model does), ``list_tags``, then an approval asked with ``interrupt()``, then
``deploy`` once approved, then done. State is checkpointed by ``SqliteSaver`` in a file with
``durability="sync"``: every step is on disk before the next one starts, as every Outerloop
event is in Redis's AOF (``appendfsync always``) before the next one is decided.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any, Literal, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt

from bench.agents import TAGS


class DeployState(TypedDict, total=False):
    request: str
    tags: list[str]
    tag: str
    approved: bool
    result: str
    message: str


Action = Literal["list_tags", "ask_approval", "finish"]


def decide(state: DeployState) -> dict[str, Any]:
    """The scripted decision: nothing to change in the state, the route says what is next."""
    return {}


def next_action(state: DeployState) -> Action:
    if "tags" not in state:
        return "list_tags"
    if "result" not in state:
        return "ask_approval"
    return "finish"


def list_tags(state: DeployState) -> dict[str, Any]:
    return {"tags": list(TAGS)}


def ask_approval(state: DeployState) -> dict[str, Any]:
    tag = state["tags"][0]
    answer = interrupt({"tool": "deploy", "tag": tag, "question": f"Approve deploy({tag})?"})
    return {"tag": tag, "approved": bool(answer)}


def approved(state: DeployState) -> Literal["deploy", "finish"]:
    return "deploy" if state.get("approved") else "finish"


def deploy(state: DeployState) -> dict[str, Any]:
    return {"result": f"deployed {state['tag']}"}


def finish(state: DeployState) -> dict[str, Any]:
    return {"message": f"Deployed. {state['result']}" if "result" in state else "Not deploying."}


def build(checkpointer: SqliteSaver) -> CompiledStateGraph[DeployState, None, DeployState, DeployState]:
    graph = StateGraph(DeployState)
    for node in (decide, list_tags, ask_approval, deploy, finish):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "decide")
    graph.add_conditional_edges("decide", next_action)
    graph.add_edge("list_tags", "decide")
    graph.add_conditional_edges("ask_approval", approved)
    graph.add_edge("deploy", "decide")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


def run_threads(database: Path, count: int) -> tuple[float, int]:
    """Run ``count`` deploy threads, each launched, interrupted, approved and finished; returns
    the seconds it took and how many ended deployed."""
    connection = sqlite3.connect(database, check_same_thread=False)
    try:
        saver = SqliteSaver(connection)
        saver.setup()
        graph = build(saver)
        done = 0
        started = time.perf_counter()
        for n in range(count):
            config: Any = {"configurable": {"thread_id": f"deploy-{n}"}}
            paused = graph.invoke({"request": "ship the latest"}, config, durability="sync")
            assert "__interrupt__" in paused, "the thread asks for an approval"
            final = graph.invoke(Command(resume=True), config, durability="sync")
            done += final.get("message", "").startswith("Deployed. deployed v1.2.0")
        return time.perf_counter() - started, done
    finally:
        connection.close()
