"""The loop's switch: approvals, errors and escalation, interrupted calls, prefetch, step budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.asking import decision, request_for
from agent.definition import AgentSpec
from agent.events import (
    Context,
    Error,
    Event,
    HumanRequest,
    HumanResponse,
    ModelRequested,
    Paused,
    ToolCall,
    ToolResult,
)
from agent.loop import advance, next_without_running, step
from agent.model import ModelCall, ModelError, ModelOutputInvalid, ModelRequest, ModelUnavailable
from agent.scripted_model import SequenceModel
from agent.thread import Status, Thread, reduce
from agent.tools import NEEDS_APPROVAL, READ_ONLY, SAFE, Policy
from tests.kernel_helpers import (
    APPROVER,
    STRANGER,
    CountingTool,
    Launch,
    Recorder,
    call,
    events_of,
    make_spec,
    respond,
    started,
    trigger,
)

LAUNCHER = "bob"
"""The only person who may approve ``launch`` in the invariant test (the tool names him)."""

DONE = call("done_for_now", message="finished")


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the prompt of agents that hypothesis rebuilds on every example."""
    return tmp_path_factory.mktemp("agent")


@pytest.fixture
def lookup() -> CountingTool:
    return CountingTool("lookup", READ_ONLY)


@pytest.fixture
def launch() -> CountingTool:
    return CountingTool("launch", NEEDS_APPROVAL, Launch)


@pytest.fixture
def flaky() -> CountingTool:
    return CountingTool("flaky", fail_with="disk full")


INVALID_LAUNCHES: list[dict[str, Any]] = [{}, {"target": "gamma"}, {"target": 1}]
model_answers: st.SearchStrategy[ModelCall | ModelError] = st.one_of(
    st.sampled_from(("alpha", "beta")).map(lambda target: call("launch", target=target)),
    st.sampled_from(INVALID_LAUNCHES).map(lambda arguments: ModelCall("launch", arguments)),
    st.just(call("lookup", query="status")),
    st.just(call("no_such_tool")),
    st.just(DONE),
    st.just(call("request_human_input", question="which target?")),
    st.sampled_from((ModelUnavailable("overloaded"), ModelOutputInvalid("answered with text"))),
)


class DrawnModel:
    """A model whose every answer hypothesis draws: valid or invalid calls, or a failure."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def decide(self, request: ModelRequest) -> ModelCall:
        answer = self.data.draw(model_answers, label="model answer")
        if isinstance(answer, ModelError):
            raise answer
        return answer


def draw_response(data: st.DataObject, thread: Thread) -> HumanResponse:
    """A response to the pending request, an earlier one or none, from anyone, with any verdict.

    The pending request and its approvers come first, so the loop is often unblocked.
    """
    pending = thread.pending
    earlier = [e.request_id for e in events_of(thread, HumanRequest)]
    request_ids = [pending.request_id] if pending is not None else []
    responders = list(pending.approvers) if pending is not None else []
    return HumanResponse(
        request_id=data.draw(st.sampled_from([*request_ids, *earlier, "no-such-request"]), label="request"),
        responder=data.draw(st.sampled_from([*responders, APPROVER, LAUNCHER, STRANGER]), label="responder"),
        approved=data.draw(st.sampled_from((True, False, None)), label="approved"),
    )


def accepted_approvals(events: tuple[Event, ...]) -> list[dict[str, object]]:
    """The arguments of every approval request's first answer by one of its approvers, if it approved.

    Computed from the log alone, without ``reduce``, as the invariant states it. (Every request
    in these tests names its approvers, so nobody else may answer.)
    """
    requests = {e.request_id: e for e in events if isinstance(e, HumanRequest)}
    answered: set[str] = set()
    accepted: list[dict[str, object]] = []
    for event in events:
        if not isinstance(event, HumanResponse) or event.request_id in answered:
            continue
        request = requests.get(event.request_id)
        if request is None or event.responder not in request.approvers:
            continue
        answered.add(event.request_id)
        if request.kind == "approval" and request.call is not None and event.approved:
            accepted.append(request.call.arguments)
    return accepted


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_tool_needing_approval_runs_only_after_an_allowed_approval(
    data: st.DataObject, agent_dir: Path
) -> None:
    launch = CountingTool("launch", Policy(needs_approval=True, approvers=(LAUNCHER,)), Launch)
    spec = make_spec(agent_dir, launch, CountingTool("lookup"))
    model = DrawnModel(data)
    thread = started()
    for _ in range(data.draw(st.integers(min_value=5, max_value=40), label="actions")):
        action = data.draw(st.sampled_from(("step", "respond", "trigger")), label="action")
        if action == "step":
            thread = advance(thread, spec, model, max_steps=1)
        elif action == "respond":
            thread = reduce(thread, draw_response(data, thread))
        else:
            thread = reduce(thread, trigger("and another thing"))
    if thread.approved is not None:  # an approval given last is carried out by the next step
        thread = advance(thread, spec, model, max_steps=1)
    assert [c.model_dump() for c in launch.calls] == accepted_approvals(thread.events)


def test_a_rejected_tool_does_not_run_and_the_model_sees_the_rejection(
    tmp_path: Path, launch: CountingTool
) -> None:
    spec = make_spec(tmp_path, launch)
    model = SequenceModel([call("launch", target="alpha"), DONE])
    thread = advance(started(), spec, model)
    assert thread.status is Status.AWAITING_HUMAN

    thread = advance(respond(thread, approved=False, comment="not during the freeze"), spec, model)

    assert launch.calls == []
    assert thread.status is Status.DONE
    rejection = (
        f'<human_response from="{APPROVER}" decision="rejected">not during the freeze</human_response>'
    )
    assert rejection in model.requests[-1].context


def test_a_tool_that_raises_records_a_tool_error_the_model_sees(tmp_path: Path, flaky: CountingTool) -> None:
    model = SequenceModel([call("flaky"), DONE])
    thread = advance(started(), make_spec(tmp_path, flaky), model)

    [tool_call] = events_of(thread, ToolCall)
    [error] = events_of(thread, Error)
    assert (error.source, error.tool, error.call_id) == ("tool", "flaky", tool_call.call_id)
    assert error.message == "RuntimeError: disk full"
    assert "RuntimeError: disk full" in model.requests[-1].context
    assert thread.status is Status.DONE


def test_invalid_arguments_record_an_arguments_error_naming_the_field(
    tmp_path: Path, launch: CountingTool
) -> None:
    model = SequenceModel([call("launch", target="gamma"), DONE])
    thread = advance(started(), make_spec(tmp_path, launch), model)

    [error] = events_of(thread, Error)
    assert (error.source, error.tool) == ("arguments", "launch")
    assert error.message.startswith("invalid arguments for launch: target:")
    assert events_of(thread, HumanRequest) == []
    assert thread.status is Status.DONE


@pytest.mark.parametrize("limit", [1, 3])
def test_after_error_limit_consecutive_errors_the_loop_asks_a_human(
    tmp_path: Path, flaky: CountingTool, limit: int
) -> None:
    model = SequenceModel([call("flaky")] * (limit + 2))
    thread = advance(started(), make_spec(tmp_path, flaky, error_limit=limit), model)

    assert thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None
    assert (thread.pending.kind, thread.pending.approvers) == ("question", (APPROVER,))
    assert f"{limit} errors in a row" in thread.pending.text
    assert "RuntimeError: disk full" in thread.pending.text
    assert len(flaky.calls) == len(model.requests) == limit


def test_a_success_resets_the_error_count(tmp_path: Path, flaky: CountingTool, lookup: CountingTool) -> None:
    model = SequenceModel([call("flaky"), call("flaky"), call("lookup"), call("flaky"), call("flaky"), DONE])
    thread = advance(started(), make_spec(tmp_path, flaky, lookup), model)

    assert thread.status is Status.DONE
    assert events_of(thread, HumanRequest) == []


def test_a_human_answer_resets_the_error_count(tmp_path: Path, flaky: CountingTool) -> None:
    spec = make_spec(tmp_path, flaky)
    model = SequenceModel([call("flaky")] * 5 + [DONE])
    thread = advance(started(), spec, model)
    assert thread.status is Status.AWAITING_HUMAN

    thread = respond(thread, answer="try once more")
    assert thread.consecutive_errors == 0
    thread = advance(thread, spec, model)

    assert thread.status is Status.DONE
    assert len(events_of(thread, HumanRequest)) == 1


def test_errors_before_done_do_not_count_after_a_follow_up(tmp_path: Path, flaky: CountingTool) -> None:
    spec = make_spec(tmp_path, flaky)
    model = SequenceModel([call("flaky"), call("flaky"), DONE, call("flaky"), DONE])
    thread = advance(started(), spec, model)
    assert thread.status is Status.DONE

    thread = advance(reduce(thread, trigger("one more thing")), spec, model)

    assert thread.status is Status.DONE
    assert events_of(thread, HumanRequest) == []


def interrupted(tool: str, **arguments: object) -> Thread:
    """A thread whose worker died after recording a call to ``tool`` and before its result."""
    return reduce(started(), ToolCall(call_id="c1", tool=tool, arguments=arguments))


def test_an_interrupted_idempotent_call_runs_again_once(tmp_path: Path, lookup: CountingTool) -> None:
    model = SequenceModel([DONE])
    thread = advance(interrupted("lookup", query="status"), make_spec(tmp_path, lookup), model)

    assert [c.model_dump() for c in lookup.calls] == [{"query": "status"}]
    assert [c.call_id for c in events_of(thread, ToolCall)] == ["c1"]
    assert [r.call_id for r in events_of(thread, ToolResult)] == ["c1"]
    assert thread.status is Status.DONE


@pytest.mark.parametrize("policy", [SAFE, NEEDS_APPROVAL], ids=["safe", "needs_approval"])
def test_an_interrupted_call_that_is_not_idempotent_asks_a_human_before_running_again(
    tmp_path: Path, policy: Policy
) -> None:
    launch = CountingTool("launch", policy, Launch)
    spec = make_spec(tmp_path, launch)
    model = SequenceModel([DONE])
    thread = advance(interrupted("launch", target="beta"), spec, model)

    assert launch.calls == []
    [error] = events_of(thread, Error)
    assert (error.source, error.tool, error.call_id) == ("interrupted", "launch", "c1")
    assert thread.status is Status.AWAITING_HUMAN
    assert thread.pending is not None and thread.pending.call is not None
    assert thread.pending.kind == "approval"
    assert (thread.pending.call.tool, thread.pending.call.arguments) == ("launch", {"target": "beta"})

    thread = advance(respond(thread, approved=True), spec, model)

    assert [c.model_dump() for c in launch.calls] == [{"target": "beta"}]
    assert len(events_of(thread, ToolResult)) == 1
    assert thread.status is Status.DONE


def on_call(thread: Thread) -> Context:
    return Context(name="on_call", content="bob is on call")


def nothing_to_add(thread: Thread) -> None:
    return None


def pager_down(thread: Thread) -> Context:
    raise ConnectionError("pager API down")


def test_prefetch_hooks_add_context_the_first_model_call_sees(tmp_path: Path) -> None:
    model = SequenceModel([DONE])
    thread = advance(started(), make_spec(tmp_path, prefetch=(nothing_to_add, on_call)), model)

    assert [e.type for e in thread.events] == [
        "trigger",
        "context",
        "model_requested",
        "model_decided",
        "done",
    ]
    assert '<context name="on_call">bob is on call</context>' in model.requests[0].context


def test_a_failing_prefetch_hook_becomes_an_error_event(tmp_path: Path) -> None:
    model = SequenceModel([DONE])
    thread = advance(started(), make_spec(tmp_path, prefetch=(pager_down, on_call)), model)

    [error] = events_of(thread, Error)
    assert (error.source, error.tool, error.message) == (
        "tool",
        "prefetch",
        "ConnectionError: pager API down",
    )
    assert [e.type for e in thread.events] == [
        "trigger",
        "error",
        "context",
        "model_requested",
        "model_decided",
        "done",
    ]
    assert "pager API down" in model.requests[0].context


def test_advance_stops_after_max_steps_with_the_thread_still_running(
    tmp_path: Path, lookup: CountingTool
) -> None:
    model = SequenceModel([call("lookup")] * 5)
    thread = advance(started(), make_spec(tmp_path, lookup), model, max_steps=2)

    assert thread.status is Status.RUNNING
    assert len(lookup.calls) == len(events_of(thread, ToolResult)) == len(model.requests) == 2


def test_record_receives_every_event_in_order(
    tmp_path: Path, lookup: CountingTool, launch: CountingTool
) -> None:
    spec = make_spec(tmp_path, lookup, launch, prefetch=(on_call,))
    model = SequenceModel([call("lookup"), call("no_such_tool"), call("launch", target="alpha")])
    recorder = Recorder(started())
    thread = advance(recorder.thread, spec, model, record=recorder)

    assert thread == recorder.thread
    assert recorder.events == list(thread.events[1:])
    assert [e.type for e in recorder.events] == [
        "context",
        "model_requested",
        "model_decided",
        "tool_call",
        "tool_result",
        "model_requested",
        "model_decided",
        "error",
        "model_requested",
        "model_decided",
        "human_request",
    ]


def decided_on(thread: Thread, spec: AgentSpec, call: ModelCall) -> Thread:
    """``thread`` after a request for its next step and the model's answer ``call``."""
    requested = request_for(thread, spec)
    return reduce(reduce(thread, requested), decision(requested, call, 0.0))


@pytest.mark.parametrize(
    ("call", "taken"),
    [
        (ModelCall("done_for_now", {"message": "ok"}), "done"),
        (ModelCall("request_human_input", {"question": "Which target?"}), "human_request"),
        (ModelCall("launch", {"target": "alpha"}), "human_request"),
        (ModelCall("lookup", {"query": "x"}), None),
        (ModelCall("launch", {"target": "gamma"}), None),
    ],
)
def test_a_step_that_runs_nothing_is_the_event_the_loop_records_and_nothing_else_is(
    tmp_path: Path, lookup: CountingTool, launch: CountingTool, call: ModelCall, taken: str | None
) -> None:
    spec = make_spec(tmp_path, lookup, launch)
    thread = decided_on(started(), spec, call)
    recorded: list[Event] = []

    def record(event: Event) -> Thread:
        recorded.append(event)
        return reduce(thread, event)

    event = next_without_running(thread, spec)
    step(thread, spec, None, record)
    if taken is None:  # a tool ran, or an invalid decision's error was recorded: a worker's step
        assert event is None and (lookup.calls or recorded[0].type == "error")
        return
    assert event is not None and event.type == recorded[0].type == taken and len(recorded) == 1
    assert not lookup.calls and not launch.calls
    if isinstance(event, HumanRequest) and event.call is not None:
        assert isinstance(recorded[0], HumanRequest) and recorded[0].call is not None
        assert (event.call.tool, event.call.arguments) == (recorded[0].call.tool, recorded[0].call.arguments)


def test_the_first_request_runs_nothing_unless_prefetch_hooks_or_an_escalation_come_first(
    tmp_path: Path, flaky: CountingTool
) -> None:
    plain = make_spec(tmp_path, flaky)
    assert isinstance(next_without_running(started(), plain), ModelRequested)
    assert next_without_running(started(), make_spec(tmp_path, flaky, prefetch=(on_call,))) is None
    stuck = started()
    for _ in range(plain.error_limit):
        stuck = reduce(stuck, Error(source="tool", tool="flaky", message="disk full"))
    assert next_without_running(stuck, plain) is None, "the loop asks a human: a worker's step"
    assert next_without_running(reduce(started(), Paused(by=APPROVER)), plain) is None
