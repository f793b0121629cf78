"""A whole step of a long thread against a real Redis (part of ``python -m bench long``).

A step is what a worker does for one model decision: load the thread (``Store.load``: a
snapshot and the events after it), fold what is new, render the context, let the scripted
model decide (``done_for_now``) and append the events it records (``model_requested``,
``model_decided``, ``done``). The thread is the long threads' mix of events (``bench.long``),
closed by a ``done`` and reopened by a new trigger, N events in all: so the step of every N
asks the model, and is checked to append the same events. Each step is timed alone (wall
clock, so Redis's round trips count; no garbage collection, as in ``timeit``; and, when warm,
this process's CPU time, which the machine's other work moves least), and the log is cut
back to N events between steps, so every step sees the same thread. Three cases per N:

- warm: the process stepped the thread before (a pool's worker, or a caller, taking up the
  thread again): it holds the thread up to the new trigger, rendered as its last request was,
  so it reads, folds and renders only what came after;
- cold: a process that never saw the thread: it reads the snapshot in Redis;
- replay: the same with no snapshot in Redis (as every load was before snapshots; such a
  load writes one).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import redis

from agent.context import user_prompt
from agent.definition import AgentSpec
from agent.events import EVENT_ADAPTER, AgentMessage, Done, Event, Origin, ToolCall, Trigger
from agent.loop import step
from agent.model import Model
from agent.scripted_model import ScriptedModel
from agent.thread import Thread, reduce, replay
from bench.agents import agents
from bench.long import long_thread
from bot.settings import Settings
from bot.state.store import Store, key

STEP_SIZES = (10, 10_000)
STEPS = 25
"""Steps timed per case; the median counts."""
TARGET = 2.0
"""The most a step of the longest thread may cost, as a multiple of a step of the shortest."""
AGENT = "one_step"
ORIGIN = Origin(channel="bench", sender="bench")
STEP = ("model_requested", "model_decided", "done")
"""The events a step appends, whatever the thread's length."""


@dataclass(frozen=True)
class StepCase:
    events: int
    warm: float
    """Median seconds of a step in a process that loaded the thread before."""
    warm_cpu: float
    """Median CPU seconds of this process in such a step (what the machine's other work moves least)."""
    cold: float
    """Median seconds of a step in a process that had not, from Redis's snapshot."""
    replayed: float
    """Median seconds of a step in a process that had not, with no snapshot: a replay of the log."""


def measure_steps(url: str, sizes: Sequence[int] = STEP_SIZES) -> list[StepCase]:
    connection = redis.Redis.from_url(url)
    settings = Settings(redis_url=url, agents="bench.agents:agents", anthropic_api_key=None)
    spec = agents(settings).get(AGENT)
    assert spec.script is not None, "the bench agents are scripted"
    # In-process, as the kernel's own step runs it: the request and the decision both recorded.
    model = ScriptedModel.from_file(spec.script)
    cases = []
    for size in sizes:
        thread_id = f"step-{size}"
        events = step_thread(size)
        _store_log(connection, thread_id, events)
        stepping = partial(_step, connection=connection, thread_id=thread_id, spec=spec, model=model)
        rendered = _rendered(thread_id, events[:-2], spec)
        warm, warm_cpu = [], []
        # The warm steps one after another: after a cold step's fold of the whole thread, the
        # scheduler of a busy machine would put the process behind the others (see ``_held``).
        for _ in range(STEPS):
            store = Store(connection)
            store.snapshots.remember(_held(rendered, events[-2]))
            wall, cpu = stepping(store)
            warm.append(wall)
            warm_cpu.append(cpu)
        folded = replay(thread_id, AGENT, events)
        cold, replayed = [], []
        for _ in range(STEPS):
            Store(connection).snapshots.save(folded)
            cold.append(stepping(Store(connection))[0])
            connection.delete(key("thread", thread_id, "snapshot"))
            replayed.append(stepping(Store(connection))[0])
        medians = (statistics.median(times) for times in (warm, warm_cpu, cold, replayed))
        cases.append(StepCase(size, *medians))
    return cases


def step_thread(size: int) -> list[Event]:
    """``size`` events of the long threads' mix, the last exchange closed by ``done`` (a call it
    cut off made a message instead), then a new trigger: a thread whose next step asks the model."""
    events = long_thread(size - 2)
    if events and isinstance(events[-1], ToolCall):
        events[-1] = AgentMessage(id=events[-1].id, at=events[-1].at, text="Checking the tags.")
    return [*events, Done(message="Done for now."), Trigger(text="one more, please", origin=ORIGIN)]


def _rendered(thread_id: str, events: Sequence[Event], spec: AgentSpec) -> Thread:
    """The thread of ``events`` as the request of a step rendered it, in a history whose next
    slot is taken (by a fold that is thrown away): so every fold onto it copies the history
    with its renderings and kept tail, and no step grows it (see ``_held``)."""
    rendered = replay(thread_id, AGENT, events)
    user_prompt(rendered, spec.context_budget)
    reduce(rendered, Trigger(text="taken", origin=ORIGIN))
    return rendered


def _held(rendered: Thread, last: Event) -> Thread:
    """The thread as a process that stepped it before holds it: ``rendered`` as the request of its
    last step was, and then ``last`` (that step's ``done``), in a history of its own. Made this
    way, no step pays for it; a fold of the whole thread before each step would also leave the
    process behind the others for the CPU on a busy machine."""
    return reduce(rendered, last)


def _step(
    store: Store, connection: redis.Redis, thread_id: str, spec: AgentSpec, model: Model
) -> tuple[float, float]:
    """Time one step of ``thread_id`` (wall and this process's CPU), then cut its log back to
    what it was."""
    size = connection.llen(key("thread", thread_id, "events"))
    gc.disable()  # as timeit does: a collection of earlier steps' garbage is not this step's cost
    started, cpu = time.perf_counter(), time.process_time()
    thread = store.load(thread_id)
    current = thread

    def record(event: Event) -> Thread:
        nonlocal current
        current = store.append(current, event).thread
        return current

    step(thread, spec, model, record)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.enable()
    appended = tuple(event.type for event in current.events[size:])
    assert appended == STEP, f"a step of the {size}-event thread appended {appended}, not {STEP}"
    connection.ltrim(key("thread", thread_id, "events"), 0, size - 1)
    return elapsed, cpu


def _store_log(connection: redis.Redis, thread_id: str, events: Sequence[Event]) -> None:
    """Write ``events`` as the thread's log and meta, as the appends would have."""
    pipe = connection.pipeline()
    pipe.delete(key("thread", thread_id, "events"))
    pipe.hset(
        key("thread", thread_id, "meta"), mapping={"agent": AGENT, "status": "running", "created_at": 0}
    )
    pipe.rpush(key("thread", thread_id, "events"), *[EVENT_ADAPTER.dump_json(event) for event in events])
    pipe.execute()


def report_steps(cases: Sequence[StepCase]) -> list[str]:
    shortest, longest = min(cases, key=lambda c: c.events), max(cases, key=lambda c: c.events)
    rows = [
        f"{'a whole step':24}{case.events:>8,}"
        + "".join(f"{_ms(seconds):>12}" for seconds in (case.warm, case.warm_cpu, case.cold, case.replayed))
        + f"{case.warm / shortest.warm:>12.2f}x{case.warm_cpu / shortest.warm_cpu:>12.2f}x"
        for case in cases
    ]
    return [
        f"A step (load, fold what is new, render, decide with the scripted model, append"
        f" {', '.join(STEP)}): median of {STEPS}; wall time, and this process's CPU time when warm",
        f"{'':24}{'events':>8}{'warm':>12}{'warm CPU':>12}{'cold':>12}{'replay':>12}{'x warm':>13}"
        f"{'x warm CPU':>13}",
        *rows,
        *(
            f"a step on a {longest.events:,}-event thread: {ratio:.2f}x a step on a {shortest.events}-event"
            f" thread (warm process, {what}) -> target <= {TARGET:.0f}x: {_verdict(ratio)}"
            for what, ratio in (
                ("wall time", longest.warm / shortest.warm),
                ("CPU time", longest.warm_cpu / shortest.warm_cpu),
            )
        ),
    ]


def _verdict(ratio: float) -> str:
    return "met" if ratio <= TARGET else "NOT met"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"
