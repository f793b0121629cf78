"""Real services for tests: redis-server on a free port, the web app over HTTP, worker processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

import redis
import uvicorn
from fastapi import FastAPI

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    """Poll until ``condition`` returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class RedisServer:
    """A private redis-server, which a test may kill and restart.

    ``durable`` turns on the AOF with an fsync per write, so a killed server loses nothing;
    the benchmark turns it off, so that the disk does not dominate what it measures.
    """

    def __init__(self, directory: Path, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server must be installed"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                *(
                    ("--appendonly", "yes", "--appendfsync", "always")
                    if self.durable
                    else ("--appendonly", "no")
                ),
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: _pings(client), f"redis-server on port {self.port}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


def tagged_repo(repo: Path) -> Path:
    """A git repository at ``repo`` with tags v1.0.0 and v1.1.0, for the deploy agent."""
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for tag in ("v1.0.0", "v1.1.0"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", tag], check=True)
        subprocess.run([*git, "tag", tag], check=True)
    return repo


def outerloop_env(redis_url: str, repo: Path, deploy_command: str) -> dict[str, str]:
    """The environment of an Outerloop process under test (scripted model, no keys)."""
    return {
        "REDIS_URL": redis_url,
        "OUTERLOOP_DEPLOY_REPO": str(repo),
        "OUTERLOOP_DEPLOY_COMMAND": deploy_command,
        "OUTERLOOP_API_TOKEN": "test-token",
        "OUTERLOOP_LOCK_TTL": "2",
        "OUTERLOOP_SWEEP_INTERVAL": "0.5",
        "OUTERLOOP_AGENTS": "tests.agents:agents",
        "ANTHROPIC_API_KEY": "",
    }


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the web app to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def cli_args(command: str) -> tuple[str, ...]:
    """``outerloop COMMAND``, as arguments to this Python."""
    return ("-m", "bot.cli", command)


OUTERLOOP_WORKER = cli_args("worker")
OUTERLOOP_CALLER = cli_args("caller")


class Workers:
    """Worker processes, each in its own process group so a test can SIGKILL it whole.

    They run ``outerloop worker`` unless ``args`` name another module (the benchmark runs
    plain ``rq worker`` processes for its baseline). Starting ``outerloop worker``s also
    starts an ``outerloop caller`` unless one runs: workers never ask the model themselves.
    """

    def __init__(
        self, env: dict[str, str], log: Path | None = None, args: Sequence[str] = OUTERLOOP_WORKER
    ) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        """Where the processes' output goes (pytest shows it with a failure); None discards it."""
        self.args = tuple(args)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.callers: list[subprocess.Popen[bytes]] = []
        """The ``outerloop caller`` processes among ``processes``."""

    def start(self, count: int = 1, args: Sequence[str] | None = None) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` processes of ``args`` (default: the pool's command); returns them."""
        args = tuple(args) if args else self.args
        with self.log.open("ab") if self.log else open(os.devnull, "wb") as log:
            started = self._spawn(count, args, log)
            if args == OUTERLOOP_WORKER and not self.callers:
                self._spawn(1, OUTERLOOP_CALLER, log)
        return started

    def _spawn(self, count: int, args: tuple[str, ...], log: BinaryIO) -> list[subprocess.Popen[bytes]]:
        started = [self._popen(args, log) for _ in range(count)]
        self.processes.extend(started)
        if args == OUTERLOOP_CALLER:
            self.callers.extend(started)
        return started

    def _popen(self, args: tuple[str, ...], log: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            cwd=REPO,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill_all(self) -> None:
        """SIGKILL every process with all its descendants, as a crashed machine would."""
        for process in list(self.processes):
            self.kill(process)

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL one process with all its descendants, as a crashed machine would.

        A descendant may sit in a process group of its own (RQ's scheduler, a tool), so
        killing the worker's group alone could leave it running."""
        for pid in [*_descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        process.wait()
        self.processes.remove(process)
        if process in self.callers:
            self.callers.remove(process)

    def owner_of(self, pid: int) -> subprocess.Popen[bytes] | None:
        """The process of this pool that ``pid`` descends from (a worker process's supervisor), if any."""
        return next((p for p in self.processes if pid in _descendants(p.pid)), None)

    def stop_all(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL for anything that lingers."""
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill_all()
        self.processes.clear()
        self.callers.clear()


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that are still running (none once it is gone)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _descendants(pid: int) -> list[int]:
    return [grandchild for child in children_of(pid) for grandchild in (*_descendants(child), child)]
