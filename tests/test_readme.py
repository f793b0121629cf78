"""The README's "Your own agents" and "Usage and cost" sections run as written, from a fresh directory."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.services import REPO

BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
FILE_HEADER = re.compile(r"^# (\S+\.(?:py|toml|md|json))\n")


def section(title: str) -> str:
    return (REPO / "README.md").read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def run(line: str, cwd: Path, env: dict[str, str]) -> str:
    """One README command line: leading ``NAME=value`` words are environment, as in a shell."""
    words = shlex.split(line, comments=True)
    extra = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        extra[name] = value
    assert words[0] == "outerloop"
    binary = Path(sys.executable).with_name("outerloop")
    completed = subprocess.run(
        [str(binary), *words[1:]], cwd=cwd, env={**env, **extra}, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, f"{line}: {completed.stdout}{completed.stderr}"
    return completed.stdout


def test_the_your_own_agents_section_runs_as_written_from_a_fresh_directory(
    tmp_path: Path, redis_url: str
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "ANTHROPIC_API_KEY": ""}
    for name in ("OUTERLOOP_AGENTS", "OUTERLOOP_AGENTS_DIR", "PYTHONPATH"):
        env.pop(name, None)
    outputs: dict[str, str] = {}
    for language, body in BLOCK.findall(section("Your own agents")):
        header = FILE_HEADER.match(body)
        if header is not None:
            path = tmp_path / header.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body[header.end() :] if language in ("markdown", "json") else body)
        elif language == "sh":
            for line in body.strip().splitlines():
                outputs[line] = run(line, tmp_path, env)
    assert "ok   janitor" in outputs["outerloop agents check"]
    listing = outputs["outerloop agents"]
    assert "prune" in listing and "needs approval, approvers S0123OPS, 2 distinct approvers" in listing
    assert "awaiting_human" in outputs["outerloop threads --agent janitor"]
    both = outputs["OUTERLOOP_AGENTS=myagents:agents outerloop agents"]
    assert all(f"{name}:" in both for name in ("deploy", "uptime", "janitor"))


def test_the_usage_and_cost_section_runs_as_written(tmp_path: Path, redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "ANTHROPIC_API_KEY": ""}
    for name in ("OUTERLOOP_AGENTS", "OUTERLOOP_AGENTS_DIR", "OUTERLOOP_PRICES", "PYTHONPATH"):
        env.pop(name, None)
    run("outerloop launch 'deploy v1.0.0'", tmp_path, env)  # a thread to count
    outputs: dict[str, str] = {}
    for language, body in BLOCK.findall(section("Usage and cost")):
        header = FILE_HEADER.match(body)
        if header is not None:
            (tmp_path / header.group(1)).write_text(body[header.end() :])
        elif language == "sh":
            for line in body.strip().splitlines():
                outputs[line.split("#")[0].strip()] = run(line, tmp_path, env)
        elif language == "json":
            assert {"thread_id", "agent", "event_type", "process"} <= set(json.loads(body))
    assert "deploy: 1 thread (running 1)" in outputs["outerloop stats"]
    report = json.loads(outputs["outerloop stats --since 7d --json"])
    assert report["agents"]["deploy"]["threads"] == 1 and report["total"]["usage"]["cost_usd"] == 0.0
    assert "threads started since" in outputs["OUTERLOOP_PRICES=prices.toml outerloop stats --since 30m"]
