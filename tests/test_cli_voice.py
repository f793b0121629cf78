"""The CLI answers at once and in its own words: lazy imports, one-line errors, readable listings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.thread import Status
from bot.commands.thread_list import STATUSES
from channels.request_text import BLANK_REQUEST
from tests.services import free_port
from tests.test_cli import outerloop, work_in_bursts

HEAVY = ("anthropic", "slack_bolt", "uvicorn", "aiosmtpd", "mcp", "fastapi")


def test_importing_the_cli_imports_no_sdk_web_server_or_mail_server() -> None:
    code = f"import json, sys, bot.cli; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(completed.stdout) == []


def test_the_status_choices_are_the_thread_states() -> None:
    assert tuple(status.value for status in Status) == STATUSES


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_a_blank_request_is_refused_with_the_sentence_every_door_uses(env: dict[str, str], text: str) -> None:
    said = outerloop("launch", text, env=env, check=False)
    assert f"Error: {BLANK_REQUEST}" in said and "Traceback" not in said
    assert outerloop("threads", env=env) == ""


def test_respond_speaks_of_cli_flags_and_fork_bounds_agree_with_their_hint(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "deploy v1.0.0 to production", env=env).strip()
    work_in_bursts(env)  # up to the approval request
    shown = outerloop("show", thread_id, env=env)
    assert f"outerloop respond {thread_id} --approve [--set KEY=VALUE] | --reject REASON [--as WHO]" in shown
    wrong = outerloop("respond", thread_id, "--answer", "yes", env=env, check=False)
    assert f"thread {thread_id} waits for an approval: use --approve or --reject REASON" in wrong
    assert "approved: true or false" not in wrong
    count = sum(line[:3].strip().isdigit() for line in shown.splitlines())  # the numbered event lines
    for at in (0, count + 1):
        refused = outerloop("fork", thread_id, "--at", str(at), env=env, check=False)
        assert f"(use 1 to {count})" in refused, refused
    fork_id = outerloop("fork", thread_id, "--at", "1", env=env).strip()
    assert f"forked from {thread_id} at 1" in outerloop("show", fork_id, env=env).splitlines()[1]


def test_pause_and_cancel_take_a_reason_recorded_in_the_thread(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "deploy v1.0.0", env=env).strip()
    assert outerloop("pause", thread_id, "--reason", "freeze", env=env).strip() == f"{thread_id} paused"
    assert (
        outerloop("cancel", thread_id, "--reason", "not needed", env=env).strip() == f"{thread_id} cancelled"
    )
    shown = outerloop("show", thread_id, env=env)
    assert re.search(r"paused\s+\S+: freeze", shown) and re.search(r"cancelled\s+\S+: not needed", shown)


def test_threads_lists_created_agent_channel_status_and_the_requests_first_line(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "deploy v1.0.0 to production\nand tell ops", env=env).strip()
    [line] = outerloop("threads", "--agent", "deploy", "--limit", "5", env=env).splitlines()
    assert re.fullmatch(
        rf"{thread_id}  \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  "
        r"deploy\s+cli\s+running\s+deploy v1\.0\.0 to production",
        line,
    ), line
    assert "\x1b[" not in line, "a pipe gets plain text"


def test_a_stale_dev_redis_url_gives_one_line_saying_what_to_do(tmp_path: Path) -> None:
    (tmp_path / ".outerloop").mkdir()
    (tmp_path / ".outerloop" / "redis-url").write_text(f"redis://127.0.0.1:{free_port()}/0")
    said = outerloop("threads", env={"REDIS_URL": ""}, cwd=tmp_path, check=False)
    assert "nothing answers there: `outerloop dev` is not running in this directory" in said
    assert "Traceback" not in said and len(said.strip().splitlines()) == 1


def test_log_lines_name_their_process_and_json_lines_carry_the_thread_id(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "deploy v1.0.0 to production", env=env).strip()
    for process in ("caller", "worker"):  # the caller answers (list_tags), then a worker runs it
        completed = subprocess.run(
            [sys.executable, "-m", "bot.cli", process, "--burst"],
            env={**os.environ, **env, "OUTERLOOP_LOG_FORMAT": "json"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = [json.loads(line) for line in completed.stderr.splitlines() if line.startswith("{")]
        assert lines and all(line["process"] == process for line in lines)
        recorded = [line for line in lines if line["event"] == "event.recorded"]
        assert recorded and all(line["thread_id"] == thread_id for line in recorded)
        assert not any(
            "Job OK" in line["event"] or "Successfully completed" in line["event"] for line in lines
        )
