"""``outerloop dev``: every process in one command, with a private Redis when none is configured.

The banner appears only once every part answers; Ctrl-C (or SIGTERM) stops the parts, then
the private Redis last, each in its own process group so a terminal's Ctrl-C reaches this
supervisor alone and the parts stop in order, quietly. A new part is one line in ``PARTS``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import redis

from bot.commands import readiness
from bot.commands.dev_state import DevError, DevState, demo_repo, private_redis
from bot.metrics import multiproc
from bot.settings import DEV_REDIS_URL_FILE, STATE_DIR, Settings

DEV_PERSON = "dev@localhost"
"""Who the printed console link signs in when no approvers are set (then anyone may answer)."""
DEV_LINK_TTL = 24 * 3600
START_TIMEOUT = 120.0
"""Seconds the parts have to answer on a busy machine before ``outerloop dev`` gives up."""
STOP_GRACE = 2.5
"""Seconds the parts have to stop on SIGTERM before they are killed (Ctrl-C ends all within 3 s)."""


@dataclass(frozen=True)
class Part:
    """One ``outerloop <name>`` process and how to tell it answers."""

    name: str
    ready: Callable[[Settings, int], bool]
    """Whether the part answers, given the settings and the part's process id."""


PARTS = (
    Part("web", lambda settings, pid: readiness.http_ok(settings.host, settings.port, "/healthz")),
    Part("worker", lambda settings, pid: readiness.worker_registered(settings.require_redis_url(), pid)),
    # The caller and the scheduler have nothing to ask: started is ready.
    Part("caller", lambda settings, pid: True),
    Part("scheduler", lambda settings, pid: True),
    Part(
        "smtp",
        lambda settings, pid: readiness.smtp_ehlo(settings.smtp_listen_host, settings.smtp_listen_port),
    ),
)


def run(settings: Settings, rotate: bool = False) -> None:
    state = DevState(STATE_DIR, rotate)
    env = {**os.environ, "PORT": str(settings.port), "SMTP_LISTEN_PORT": str(settings.smtp_listen_port)}
    if settings.deploy_repo is None:
        env["OUTERLOOP_DEPLOY_REPO"] = str(demo_repo(STATE_DIR / "demo-repo").resolve())
    if not settings.api_token:
        env["OUTERLOOP_API_TOKEN"] = state.api_token()
    if not settings.smtp_allowed_senders:
        env["SMTP_ALLOWED_SENDERS"] = "localhost"  # the local inbox takes mail from @localhost
    if not settings.smtp_host and not settings.smtp_maildir:
        env["SMTP_MAILDIR"] = str((STATE_DIR / "mail").resolve())
    counts = STATE_DIR / "metrics"  # every part, and the CLI here, counts into it; emptied at each start
    if multiproc.directory() in (None, counts.resolve()):
        multiproc.start_afresh(counts)
        env[multiproc.VARIABLE] = os.environ[multiproc.VARIABLE]
    if settings.redis_url:
        _supervise(env, settings)
        return
    with private_redis(STATE_DIR / "redis", state.redis_port()) as url:
        env["REDIS_URL"] = url
        DEV_REDIS_URL_FILE.write_text(url)
        try:
            _supervise(env, settings.model_copy(update={"redis_url": url}))
        finally:
            DEV_REDIS_URL_FILE.unlink(missing_ok=True)
    click.echo("stopped redis", err=True)


def _signin_link(env: dict[str, str], settings: Settings) -> str:
    """A one-time console sign-in link for the first approver (or ``dev@localhost``), valid a day."""
    from bot.console.links import create_link

    person = settings.approvers[0] if settings.approvers else DEV_PERSON
    return create_link(redis.Redis.from_url(env["REDIS_URL"]), settings, person, ttl=DEV_LINK_TTL)


def _supervise(env: dict[str, str], settings: Settings) -> None:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    children = {
        part.name: subprocess.Popen([sys.executable, "-m", "bot.cli", part.name], env=env, process_group=0)
        for part in PARTS
    }
    try:
        if _wait_ready(settings, children, lambda: stopping):
            click.echo(_banner(env, settings), err=True)
        while not stopping and all(child.poll() is None for child in children.values()):
            time.sleep(0.1)
    finally:
        _stop(children)
    failed = [name for name, child in children.items() if child.returncode not in (0, -signal.SIGTERM)]
    if failed and not stopping:
        raise DevError(f"{', '.join(failed)} stopped unexpectedly; see the log above")


def _wait_ready(
    settings: Settings, children: dict[str, subprocess.Popen[bytes]], stopping: Callable[[], bool]
) -> bool:
    """Wait until every part answers, saying which ones it still waits for; False if stopped."""
    waiting = {part.name: part for part in PARTS}
    click.echo(f"starting {', '.join(waiting)}...", err=True)
    deadline = time.monotonic() + START_TIMEOUT
    while waiting:
        for name, part in list(waiting.items()):
            child = children[name]
            if child.poll() is not None:
                raise DevError(
                    f"{name} exited with status {child.returncode} while starting; see the log above"
                )
            if part.ready(settings, child.pid):
                del waiting[name]
                click.echo(f"  {name} is ready", err=True)
        if stopping():
            return False
        if waiting and time.monotonic() > deadline:
            raise DevError(f"{', '.join(waiting)} did not answer within {START_TIMEOUT:.0f} s")
        time.sleep(0.1)
    return True


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every part, kill what is still running after ``STOP_GRACE``, one line each."""
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
            click.echo(f"stopped {name}", err=True)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            click.echo(f"killed {name} (it did not stop within {STOP_GRACE} s)", err=True)


def _banner(env: dict[str, str], settings: Settings) -> str:
    model = (
        f"Anthropic ({settings.outerloop_model})"
        if settings.anthropic_api_key
        else "scripted (no ANTHROPIC_API_KEY)"
    )
    inbox = ", ".join(settings.smtp_recipients) or "no address (set SMTP_RECIPIENTS)"
    senders = env.get("SMTP_ALLOWED_SENDERS", ", ".join(settings.smtp_allowed_senders))
    if settings.smtp_host:
        outbound = f"replies via {settings.smtp_host}"
    else:
        maildir = Path(env["SMTP_MAILDIR"])
        outbound = f"replies kept in {maildir} (read them: ls {maildir / 'new'})"
    return "\n".join(
        [
            "Outerloop dev is up:",
            f"  redis      {env['REDIS_URL']}",
            f"  web/API    http://{settings.host}:{settings.port}  (docs at /docs)",
            f"  API token  {env['OUTERLOOP_API_TOKEN']}  (kept in {STATE_DIR}; --rotate for a new one)",
            f"  console    {_signin_link(env, settings)}  (one-time sign-in link)",
            f"  model      {model}",
            f"  deploy     repo {env['OUTERLOOP_DEPLOY_REPO']}",
            f"  smtp       {settings.smtp_listen_host}:{settings.smtp_listen_port}  mail to {inbox} "
            f"from {senders}; {outbound}",
            "Try, in another terminal:  outerloop launch 'deploy v1.0.0 to production'",
            "Stop with Ctrl-C.",
        ]
    )
