"""``outerloop dev``: every process in one command, with a private Redis when none is configured."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import redis

from bot.settings import DEV_REDIS_URL_FILE, STATE_DIR, Settings

PROCESSES = ("web", "worker", "caller", "scheduler", "smtp")
DEV_PERSON = "dev@localhost"
"""Who the printed console link signs in when no approvers are set (then anyone may answer)."""
DEV_LINK_TTL = 24 * 3600


class DevError(click.ClickException):
    """A local run cannot start; the message says what to install or set."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A redis-server on a free loopback port, keeping its data (AOF) in ``directory``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevError(
            "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server), or set REDIS_URL"
        )
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--logfile",
            "redis.log",
        ],
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_redis(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_redis(url: str, process: subprocess.Popen[bytes]) -> None:
    client = redis.Redis.from_url(url)
    for _ in range(100):
        if process.poll() is not None:
            raise DevError(f"redis-server exited with status {process.returncode}; see its log")
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise DevError(f"redis-server did not answer on {url}")


def demo_repo(directory: Path) -> Path:
    """A small git repository with release tags, so the deploy agent has something to deploy."""
    if (directory / ".git").exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(directory), "-c", "user.name=Outerloop", "-c", "user.email=dev@outerloop.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", f"release {tag}"], check=True)
        subprocess.run([*git, "tag", tag], check=True)
    return directory


def run(settings: Settings) -> None:
    env = dict(os.environ)
    if settings.deploy_repo is None:
        env["OUTERLOOP_DEPLOY_REPO"] = str(demo_repo(STATE_DIR / "demo-repo").resolve())
    if not settings.api_token:
        env["OUTERLOOP_API_TOKEN"] = secrets.token_urlsafe(24)
    if not settings.smtp_allowed_senders:
        env["SMTP_ALLOWED_SENDERS"] = "localhost"  # the local inbox takes mail from @localhost
    if settings.redis_url:
        _supervise(env, settings)
        return
    with private_redis(STATE_DIR / "redis") as url:
        env["REDIS_URL"] = url
        DEV_REDIS_URL_FILE.write_text(url)
        try:
            _supervise(env, settings)
        finally:
            DEV_REDIS_URL_FILE.unlink(missing_ok=True)


def _inbox_line(env: dict[str, str], settings: Settings) -> str:
    inbox = ", ".join(settings.smtp_recipients) or "no address (set SMTP_RECIPIENTS)"
    outbound = f"replies via {settings.smtp_host}" if settings.smtp_host else "replies off (set SMTP_HOST)"
    return (
        f"  smtp       {settings.smtp_listen_host}:{settings.smtp_listen_port}  mail to {inbox} "
        f"from {env.get('SMTP_ALLOWED_SENDERS', ', '.join(settings.smtp_allowed_senders))}; {outbound}"
    )


def _signin_link(env: dict[str, str], settings: Settings) -> str:
    """A one-time console sign-in link for the first approver (or ``dev@localhost``), valid a day."""
    from bot.console.links import create_link

    person = settings.approvers[0] if settings.approvers else DEV_PERSON
    return create_link(redis.Redis.from_url(env["REDIS_URL"]), settings, person, ttl=DEV_LINK_TTL)


def _supervise(env: dict[str, str], settings: Settings) -> None:
    children = [subprocess.Popen([sys.executable, "-m", "bot.cli", name], env=env) for name in PROCESSES]
    model = (
        f"Anthropic ({settings.outerloop_model})"
        if settings.anthropic_api_key
        else "scripted (no ANTHROPIC_API_KEY)"
    )
    click.echo(
        "\n".join(
            [
                "Outerloop dev is up:",
                f"  redis      {env['REDIS_URL']}",
                f"  web/API    http://{settings.host}:{settings.port}  (docs at /docs)",
                f"  API token  {env['OUTERLOOP_API_TOKEN']}",
                f"  console    {_signin_link(env, settings)}  (one-time sign-in link)",
                f"  model      {model}",
                f"  deploy     repo {env['OUTERLOOP_DEPLOY_REPO']}",
                _inbox_line(env, settings),
                "Try, in another terminal:  outerloop launch 'deploy the latest tag'",
                "Stop with Ctrl-C.",
            ]
        ),
        err=True,
    )
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait(timeout=15)
    failed = [
        name for name, child in zip(PROCESSES, children, strict=True) if child.returncode not in (0, -15)
    ]
    if failed and not stopping:
        raise DevError(f"{', '.join(failed)} stopped unexpectedly; see the log above")
