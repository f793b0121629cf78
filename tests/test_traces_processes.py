"""Traces from real processes: the switch, one trace across web, worker, caller and CLI processes, and
nothing of OpenTelemetry loaded while tracing is off."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from bot.tracing import wanted
from tests.hostile.processes import WebProcess
from tests.services import REPO, Workers, wait_for
from tests.test_cli import outerloop
from tests.test_readme import section

if TYPE_CHECKING:
    from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

OFF = {name: "" for name in os.environ if name.startswith("OTEL_")}
"""The runner's own ``OTEL_*`` variables, blanked, so that "off" means off."""


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SERVICE_NAME": "outerloop"}, False),
    ],
)
def test_the_standard_variables_turn_tracing_on(environ: dict[str, str], on: bool) -> None:
    assert wanted(environ) is on


RUN_UNTRACED = """
import json, sys
import redis  # redis-py 8 imports OpenTelemetry's metrics SDK by itself, when it is installed

third_party = {name for name in sys.modules if name.startswith("opentelemetry")}
from bot import tracing
from bot.runtime import Runtime
from bot.settings import Settings
from tests.answering import advance_and_answer

tracing.configure("worker")
rt = Runtime.from_settings(Settings())
thread = advance_and_answer(rt, rt.launch("deploy", "deploy v1.0.0").thread.id)
rt.deliver(thread.id, thread.events[-1].id)
with tracing.run(thread) as observe:
    unchanged = observe(print) is print
# bot.tracing.errors is one exception class, imported with the switch; the rest is the tracer.
tracer = {name for name in sys.modules if name.startswith(("opentelemetry", "bot.tracing."))}
ours = tracer - {"bot.tracing.errors"}
added = sorted(ours - third_party)
print(json.dumps({"status": thread.status.value, "unchanged": unchanged, "added": added}))
"""


def test_with_tracing_off_a_thread_runs_without_importing_any_of_opentelemetry_itself(
    env: dict[str, str],
) -> None:
    """Outerloop imports nothing of OpenTelemetry while tracing is off, and a run's ``record`` is
    its own. (redis-py 8 imports the metrics SDK by itself when it is installed: what ``import
    redis`` loads is not Outerloop's doing, and is left out.)"""
    completed = subprocess.run(
        [sys.executable, "-c", RUN_UNTRACED],
        env={**os.environ, **env, **OFF},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    said = json.loads(completed.stdout.splitlines()[-1])
    assert said == {"status": "awaiting_human", "unchanged": True, "added": []}


def test_an_exporter_outerloop_cannot_use_is_one_clear_error(env: dict[str, str]) -> None:
    said = outerloop("threads", env={**env, **OFF, "OTEL_TRACES_EXPORTER": "zipkin"}, check=False)
    assert "Error: OTEL_TRACES_EXPORTER names zipkin, which outerloop cannot export to" in said
    assert "Traceback" not in said


def test_without_the_otel_extra_the_variables_get_one_warning_and_the_command_runs(
    env: dict[str, str],
) -> None:
    absent = "import sys; sys.modules['opentelemetry'] = None; from bot.cli import main; main()"
    completed = subprocess.run(
        [sys.executable, "-c", absent, "threads"],
        env={**os.environ, **env, **OFF, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.count("tracing.unavailable") == 1
    assert "pip install 'outerloop[otel]'" in completed.stderr


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    pytest.importorskip("opentelemetry.proto", reason="the otel extra is not installed")
    from tests.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as running:
        yield running


def test_web_worker_caller_and_cli_processes_export_one_trace_per_thread_across_an_answer(
    env: dict[str, str], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    from bot.tracing.spans import thread_ids

    traced = {
        **env,
        **OFF,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "outerloop-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    web = WebProcess(traced, tmp_path / "web.log")
    workers = Workers(traced)
    web.start()
    workers.start(2)  # two pools of two processes, and a caller
    try:
        launched = httpx.post(
            f"{web.url}/threads",
            json={"agent": "deploy", "text": "deploy v1.0.0 to production"},
            headers={"Authorization": f"Bearer {traced['OUTERLOOP_API_TOKEN']}"},
            timeout=10,
        )
        thread_id = launched.json()["id"]
        wait_for(lambda: "status=awaiting_human" in outerloop("show", thread_id, env=traced), "the approval")
        outerloop("respond", thread_id, "--approve", "--as", "alice", env=traced)
        wait_for(lambda: "status=done" in outerloop("show", thread_id, env=traced), "the deploy")
        trace_id, root_id = thread_ids(thread_id)

        def complete() -> list[ReceivedSpan] | None:
            spans = [span for span in receiver.received() if span.trace_id == trace_id]
            finished = any(span.attributes.get("outerloop.thread.status") == "done" for span in spans)
            return spans if finished and len([s for s in spans if s.name.startswith("chat ")]) == 3 else None

        spans = wait_for(complete, "the spans of every process")
    finally:
        workers.stop_all()
        web.stop_all()

    assert {span.process for span in spans} == {"web", "worker", "caller", "respond"}
    (root,) = [span for span in spans if span.parent_id is None]
    assert (root.name, root.span_id, root.process) == ("launch deploy", root_id, "web")
    # The caller asks the model and takes the steps that run nothing (the approval request, done)
    caller = [span for span in spans if span.process == "caller"]
    assert {span.name for span in caller} == {"chat scripted", "invoke_agent deploy"}
    steps = sorted(
        span.attributes["outerloop.thread.status"] for span in caller if span.name.startswith("invoke")
    )
    assert steps == ["awaiting_human", "done"]
    assert [span.name for span in spans if span.process == "respond"] == ["respond deploy"]
    runs = {span.span_id for span in spans if span.name == "invoke_agent deploy"}
    tools = [span for span in spans if span.name.startswith("execute_tool ")]
    assert sorted(span.name for span in tools) == ["execute_tool deploy", "execute_tool list_tags"]
    assert all(span.parent_id in runs for span in tools)
    assert all(span.parent_id == root_id for span in spans if span is not root and span not in tools)


def test_the_readme_traces_example_prints_the_threads_root_span_on_stderr(env: dict[str, str]) -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    (line,) = re.findall(r"```sh\n(.*?)\n```", section("Traces"), re.DOTALL)
    words = shlex.split(line.split("   #", 1)[0])
    variable, _, value = words.pop(0).partition("=")
    assert words[0] == ".venv/bin/outerloop"
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("outerloop")), *words[1:]],
        env={**os.environ, **env, **OFF, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    thread_id = completed.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", thread_id), "stdout is the thread id alone"
    assert '"name": "launch deploy"' in completed.stderr
    assert f'"outerloop.thread.id": "{thread_id}"' in completed.stderr
