"""``outerloop dev`` as a new user runs it: ready when it says so, quiet when stopped, the same
token and Redis port at the next start, outbound mail in a local maildir."""

from __future__ import annotations

import mailbox
import os
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.commands.dev import PARTS
from tests.metrics_helpers import scrape, value
from tests.services import REPO, free_port, wait_for
from tests.test_cli import outerloop

BANNER = "Outerloop dev is up:"
START = 180.0
"""Seconds a loaded machine may take to start every part; the test waits on the banner, not a clock."""


class Dev:
    """A running ``outerloop dev`` in its own session, as in a terminal, with its output collected."""

    def __init__(self, directory: Path, port: int, smtp_port: int, **settings: str) -> None:
        env = {**os.environ, "REDIS_URL": "", "ANTHROPIC_API_KEY": "", **settings}
        for name in (
            "OUTERLOOP_AGENTS",
            "OUTERLOOP_DEPLOY_REPO",
            "OUTERLOOP_DEPLOY_COMMAND",
            "OUTERLOOP_API_TOKEN",
        ):
            env.pop(name, None)
        self.port = port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "dev", "--port", str(port), "--smtp-port", str(smtp_port)],
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def banner(self) -> dict[str, str]:
        """The banner's lines by their label, once it is printed."""
        wait_for(lambda: BANNER in self.lines or self.process.poll() is not None, "the banner", timeout=START)
        assert BANNER in self.lines, self.output
        start = self.lines.index(BANNER) + 1
        labelled = [line.split(None, 1) for line in self.lines[start : start + 9]]
        return {parts[0]: parts[1] for parts in labelled}

    def interrupt(self) -> str:
        """Ctrl-C in the terminal: SIGINT to the whole process group; returns everything printed."""
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return self.output


@contextmanager
def running_dev(directory: Path, port: int, smtp_port: int, **settings: str) -> Iterator[Dev]:
    dev = Dev(directory, port, smtp_port, **settings)
    try:
        yield dev
    finally:
        if dev.process.poll() is None:
            dev.interrupt()


def test_dev_is_ready_when_it_says_so_and_stops_quietly_on_ctrl_c(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    local = {"REDIS_URL": ""}  # the CLI finds the private Redis through .outerloop/redis-url
    with running_dev(tmp_path, port, smtp_port) as dev:
        banner = dev.banner()
        # Ready means answering: no retry between the banner and the first request.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            assert client.ehlo()[0] == 250
        assert [f"  {part.name} is ready" in dev.lines for part in PARTS] == [True] * len(PARTS)
        thread_id = outerloop("launch", "deploy v1.0.0 to production", env=local, cwd=tmp_path).strip()
        wait_for(
            lambda: "awaiting_human" in outerloop("show", thread_id, env=local, cwd=tmp_path), "approval"
        )
        assert 'deploy(tag="v1.0.0", environment="production")' in outerloop(
            "show", thread_id, env=local, cwd=tmp_path
        )
        outerloop("respond", thread_id, "--approve", "--as", "alice", env=local, cwd=tmp_path)
        wait_for(lambda: "status=done" in outerloop("show", thread_id, env=local, cwd=tmp_path), "done")
        token = (tmp_path / ".outerloop" / "api-token").read_text().strip()
        samples = scrape(f"http://127.0.0.1:{port}", token)
        output = dev.interrupt()
    # Counted by the CLI (launch, respond), the workers and the caller, into .outerloop/metrics.
    assert value(samples, "outerloop_threads_started_total", agent="deploy", channel="cli") == 1
    assert value(samples, "outerloop_threads_finished_total", agent="deploy", status="done") == 1
    approved = {"agent": "deploy", "kind": "approval", "outcome": "approved"}
    assert value(samples, "outerloop_human_answer_seconds_count", **approved) == 1
    assert value(samples, "outerloop_tool_calls_total", tool="deploy", outcome="ok") == 1
    assert banner["model"] == "scripted (no ANTHROPIC_API_KEY)"
    assert banner["console"].startswith(f"http://127.0.0.1:{port}/console/signin/link?token="), (
        "a one-time sign-in link"
    )
    assert banner["smtp"].startswith(f"127.0.0.1:{smtp_port}  mail to outerloop@localhost from localhost")
    stops = [line for line in output.splitlines() if line.startswith(("stopped ", "killed "))]
    assert stops == [*(f"stopped {part.name}" for part in PARTS), "stopped redis"], output
    assert "Traceback" not in output and "ConnectionError" not in output, output
    assert dev.process.returncode == 0, output
    assert not (tmp_path / ".outerloop" / "redis-url").exists(), "the private Redis is gone with dev"


def test_dev_keeps_its_api_token_and_redis_port_across_restarts_unless_rotated(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    with running_dev(tmp_path, port, smtp_port) as dev:
        first = dev.banner()
        token = first["API"].split()[1]
        assert (tmp_path / ".outerloop" / "api-token").read_text().strip() == token
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"http://127.0.0.1:{port}/threads", headers=headers).status_code == 200
    with running_dev(tmp_path, port, smtp_port) as dev:
        again = dev.banner()
        assert (again["API"], again["redis"]) == (first["API"], first["redis"])
    rotated = outerloop("dev", "--help", env={})
    assert "--rotate" in rotated and "--port" in rotated and "--smtp-port" in rotated and "inbox" in rotated


def test_dev_keeps_outbound_mail_in_a_local_maildir(tmp_path: Path) -> None:
    port, smtp_port = free_port(), free_port()
    maildir = tmp_path / ".outerloop" / "mail"
    with running_dev(tmp_path, port, smtp_port) as dev:
        assert f"replies kept in {maildir.resolve()}" in dev.banner()["smtp"]
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail(
                "me@localhost",
                ["outerloop@localhost"],
                b"From: me@localhost\r\nTo: outerloop@localhost\r\n"
                b"Subject: deploy v1.0.0 to staging\r\n\r\nplease\r\n",
            )
        wait_for(
            lambda: maildir.is_dir() and len(mailbox.Maildir(maildir)) > 0,
            "a mail in the maildir",
            timeout=60,
        )
    [message] = list(mailbox.Maildir(maildir))[:1]
    assert message["To"] == "me@localhost" and "deploy v1.0.0 to staging" in str(message["Subject"])


def readme_block(language: str, after: str) -> str:
    """The first ``language`` block of the README after the line ``after``."""
    text = (REPO / "README.md").read_text().split(after, 1)[1]
    return text.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readme_mail_walkthrough_approves_a_deploy_by_mail_offline(tmp_path: Path) -> None:
    """The README's Email "Try it" blocks, as written, against a real ``outerloop dev`` started as
    the README says, with an approver (only the inbox port differs: the test's is a free one)."""
    port, smtp_port = free_port(), free_port()
    python = Path(sys.executable)
    local = {"REDIS_URL": ""}
    with running_dev(tmp_path, port, smtp_port, OUTERLOOP_APPROVERS="ops@localhost") as dev:
        dev.banner()
        start = readme_block("sh", "Try it with `outerloop dev` running").splitlines()
        send = " ".join(line.rstrip("\\") for line in start[:2]).replace(".venv/bin/python", str(python))
        subprocess.run(send.replace("2525", str(smtp_port)), shell=True, cwd=tmp_path, check=True)
        (thread_id,) = [
            line.split()[0] for line in outerloop("threads", env=local, cwd=tmp_path).splitlines()
        ]
        wait_for(
            lambda: "awaiting_human" in outerloop("show", thread_id, env=local, cwd=tmp_path),
            "the approval request",
            timeout=60,
        )
        wait_for(
            lambda: any(
                "+" in (m["Reply-To"] or "") for m in mailbox.Maildir(tmp_path / ".outerloop" / "mail")
            ),
            "the request mail in the maildir",
            timeout=60,
        )
        answer = readme_block("python", "answer it as ops would").replace("2525", str(smtp_port))
        subprocess.run([str(python), "-c", answer], cwd=tmp_path, check=True)
        shown = wait_for(
            lambda: (
                (text := outerloop("show", thread_id, env=local, cwd=tmp_path))
                and "status=done" in text
                and text
            ),
            "the deploy approved by mail",
            timeout=60,
        )
    assert "ops@localhost approved" in shown, shown
