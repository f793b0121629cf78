"""The ``outerloop`` command line, run as a user would: real processes, real Redis."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx

from tests.services import free_port, wait_for


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
    ]:
        assert re.search(rf"^\s+{command}\s", text, re.MULTILINE), command


def test_launch_show_respond_and_control_a_thread(env: dict[str, str]) -> None:
    thread_id = outerloop("launch", "ship the latest", env=env).strip()
    assert re.fullmatch(r"[0-9a-f]{32}", thread_id)
    outerloop("worker", "--burst", env=env)
    timeline = outerloop("show", thread_id, env=env)
    assert "status=awaiting_human" in timeline
    assert 'approval: deploy(tag="v1.1.0", environment="staging")' in timeline
    assert f"outerloop respond {thread_id} --approve" in timeline

    assert outerloop("respond", thread_id, "--approve", "--as", "alice", env=env).strip().endswith("running")
    outerloop("worker", "--burst", env=env)
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


def test_dev_runs_everything_with_a_private_redis_from_launch_to_done(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "REDIS_URL": "", "ANTHROPIC_API_KEY": "", "OUTERLOOP_AGENTS": ""}
    env["SMTP_LISTEN_PORT"] = str(smtp_port)
    for name in ("OUTERLOOP_DEPLOY_REPO", "OUTERLOOP_DEPLOY_COMMAND", "OUTERLOOP_API_TOKEN"):
        env.pop(name, None)
    env.pop("OUTERLOOP_AGENTS")
    dev = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "dev"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _healthy(port), "outerloop dev to serve /healthz", timeout=30)
        local = {"REDIS_URL": ""}  # the CLI finds the private Redis through .outerloop/redis-url
        thread_id = outerloop("launch", "deploy the latest tag", env=local, cwd=tmp_path).strip()
        wait_for(
            lambda: "awaiting_human" in outerloop("show", thread_id, env=local, cwd=tmp_path), "approval"
        )
        outerloop("respond", thread_id, "--approve", "--as", "alice", env=local, cwd=tmp_path)
        wait_for(lambda: "status=done" in outerloop("show", thread_id, env=local, cwd=tmp_path), "done")
        assert "deployed v1.2.0 to staging" in outerloop("show", thread_id, env=local, cwd=tmp_path)
        # The local inbox takes mail for outerloop@localhost from @localhost senders.
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail("me@localhost", ["outerloop@localhost"], b"From: me@localhost\r\nSubject: hi\r\n")
        assert len(outerloop("threads", env=local, cwd=tmp_path).splitlines()) == 2, "stored before the 250"
    finally:
        dev.send_signal(signal.SIGTERM)
        output, _ = dev.communicate(timeout=30)
    assert "Outerloop dev is up" in output and "scripted (no ANTHROPIC_API_KEY)" in output
    assert f"smtp       127.0.0.1:{smtp_port}  mail to outerloop@localhost from localhost" in output
    assert not (tmp_path / ".outerloop" / "redis-url").exists(), "the private Redis is gone with dev"
    assert dev.returncode == 0, output


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False
