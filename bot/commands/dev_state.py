"""What ``outerloop dev`` keeps under ``.outerloop/``: the API token, the Redis port and data,
a demo repository. The token and port stay the same at every start in a directory, so a
``$TOKEN`` exported yesterday still works, unless ``--rotate`` asks for new ones."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import redis


class DevError(click.ClickException):
    """A local run cannot start; the message says what to install or set."""


class DevState:
    def __init__(self, directory: Path, rotate: bool = False) -> None:
        self.directory = directory
        self.rotate = rotate
        directory.mkdir(parents=True, exist_ok=True)

    def api_token(self) -> str:
        """The directory's API token (readable by its owner only), made on first use or --rotate."""
        path = self.directory / "api-token"
        if path.exists() and not self.rotate:
            return path.read_text().strip()
        token = secrets.token_urlsafe(24)
        path.touch(mode=0o600)
        path.write_text(token + "\n")
        return token

    def redis_port(self) -> int:
        """The private Redis's port: the one used before if it is still free, else a new one."""
        path = self.directory / "redis-port"
        if path.exists() and not self.rotate:
            kept = int(path.read_text().strip())
            if port_free(kept):
                return kept
        port = free_port()
        path.write_text(f"{port}\n")
        return port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextmanager
def private_redis(directory: Path, port: int) -> Iterator[str]:
    """A redis-server on ``port`` keeping its data (AOF) in ``directory``, in its own session so a
    terminal's Ctrl-C does not stop it before the processes that use it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevError(
            "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server), or set REDIS_URL"
        )
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory.resolve())),
            *("--appendonly", "yes", "--save", "", "--logfile", "redis.log"),
        ],
        start_new_session=True,
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
    for _ in range(200):
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
