"""The ``outerloop`` command line, run as a user would: real processes, real Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def outerloop(*args: str, env: dict[str, str], cwd: Path | None = None, check: bool = True) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert completed.returncode == 0, completed.stderr
    return completed.stdout + (completed.stderr if not check else "")


def test_help_lists_every_command() -> None:
    text = outerloop("--help", env={})
    for command in [
        "dev",
        "web",
        "worker",
        "caller",
        "scheduler",
        "smtp",
        "launch",
        "threads",
        "show",
        "respond",
        "pause",
        "resume",
        "cancel",
        "fork",
        "tokens",
        "stats",
    ]:
        assert re.search(rf"^\s+{command}\s", text, re.MULTILINE), command


def work_in_bursts(env: dict[str, str]) -> None:
    """Callers and a worker in turn, until the deploy thread is settled: a caller answers (a
    tool), a worker runs it and asks again, a caller answers (the approval request, or done)."""
    outerloop("caller", "--burst", env=env)
    outerloop("worker", "--burst", env=env)
    outerloop("caller", "--burst", env=env)


def test_launch_show_respond_and_control_a_thread(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "ship the latest", env=env).strip()
    assert re.fullmatch(r"[0-9a-f]{32}", thread_id)
    work_in_bursts(env)
    timeline = outerloop("show", thread_id, env=env)
    assert "status=awaiting_human" in timeline
    assert 'approval: deploy(tag="v1.1.0", environment="staging")' in timeline
    assert f"outerloop respond {thread_id} --approve" in timeline

    assert outerloop("respond", thread_id, "--approve", "--as", "alice", env=env).strip().endswith("running")
    work_in_bursts(env)
    assert "status=done" in outerloop("show", thread_id, env=env)
    assert '"status": "done"' in outerloop("show", thread_id, "--json", env=env)
    assert thread_id in outerloop("threads", "--status", "done", env=env)

    fork_id = outerloop("fork", thread_id, "--at", "1", env=env).strip()
    assert outerloop("pause", fork_id, env=env).strip() == f"{fork_id} paused"
    assert outerloop("resume", fork_id, env=env).strip() == f"{fork_id} running"
    assert outerloop("cancel", fork_id, env=env).strip() == f"{fork_id} cancelled"

    first = outerloop("threads", "--limit", "1", env=env).splitlines()
    assert first[0].startswith(fork_id) and first[1].startswith("(more: add --cursor ")
    cursor = first[1].removeprefix("(more: add --cursor ").rstrip(")")
    assert outerloop("threads", "--limit", "1", "--cursor", cursor, env=env).startswith(thread_id)


def test_cli_errors_are_one_clear_line(env: dict[str, str]) -> None:
    missing = outerloop("show", "nope", env=env, check=False)
    assert "Error: no thread with id 'nope'" in missing
    assert "Traceback" not in missing
    usage = outerloop("respond", "nope", env=env, check=False)
    assert "give exactly one of --approve, --reject REASON, --answer TEXT" in usage
    no_redis = outerloop("threads", env={"REDIS_URL": ""}, cwd=Path("/"), check=False)
    assert "REDIS_URL is not set" in no_redis
