"""One MCP server's session, kept on a background event loop and used through plain calls.

The ``mcp`` client is asyncio; the worker is not. Each process gets one event loop on a
daemon thread (a forked work horse gets its own: threads do not survive ``fork``), and
every server's session lives there as a task that opens the transport and the session,
then waits to be closed, so both are entered and left in the same task as anyio wants.
A request that fails drops the session: the next request connects again.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import ServerNotification, ToolListChangedNotification

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ServerConfig:
    """How to reach one MCP server: a command over stdio, or a streamable HTTP ``url``."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    """Seconds to connect, and seconds one request may take."""

    @property
    def where(self) -> str:
        return self.url or " ".join((self.command or "", *self.args))


class McpError(RuntimeError):
    """An MCP request failed or its server went away; the message names the server."""


class ServerUnavailable(McpError):
    """The server could not be started or reached."""


_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for MCP sessions, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="outerloop-mcp", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


class Connection:
    """A session with one server, opened on first use and again after a failure."""

    def __init__(self, config: ServerConfig, on_tools_changed: Callable[[], None]) -> None:
        self.config = config
        self.on_tools_changed = on_tools_changed
        self._lock = threading.Lock()
        self._session: tuple[int, ClientSession, asyncio.Event] | None = None

    def request(self, call: Callable[[ClientSession], Awaitable[T]]) -> T:
        """Run ``call`` with the session; raises ``McpError`` (and drops the session) on failure."""
        session = self._connected()
        try:
            return self._run(call(session), self.config.timeout)
        except Exception as exc:  # any transport failure means: reconnect next time
            self.close()
            raise McpError(f"MCP server {self.config.name} failed: {_describe(exc)}") from exc

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None and session[0] == os.getpid():
            background_loop().call_soon_threadsafe(session[2].set)

    def _connected(self) -> ClientSession:
        with self._lock:
            if self._session is None or self._session[0] != os.getpid():
                stop = asyncio.Event()
                try:
                    session = self._run(self._open(stop), self.config.timeout)
                except Exception as exc:  # whatever stops it starting is the reason
                    raise ServerUnavailable(
                        f"MCP server {self.config.name} did not start: {_describe(exc)} ({self.config.where})"
                    ) from exc
                self._session = (os.getpid(), session, stop)
                log.info("mcp.connected", server=self.config.name)
            return self._session[1]

    def _run(self, coroutine: Awaitable[T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(_within(coroutine, timeout), background_loop())
        return future.result()

    async def _open(self, stop: asyncio.Event) -> ClientSession:
        """Start the task that holds the session open until ``stop``; return the session."""
        ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().create_task(self._hold(ready, stop))
        return await ready

    async def _hold(self, ready: asyncio.Future[ClientSession], stop: asyncio.Event) -> None:
        try:
            async with AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport())
                session = await stack.enter_async_context(
                    ClientSession(
                        read,
                        write,
                        read_timeout_seconds=timedelta(seconds=self.config.timeout),
                        message_handler=self._on_message,
                    )
                )
                await session.initialize()
                ready.set_result(session)
                await stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting caller, or logged
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            else:
                log.info("mcp.closed", server=self.config.name, reason=_describe(exc))

    def _transport(self) -> Any:
        if self.config.url is not None:
            client = create_mcp_http_client(headers=dict(self.config.headers))
            return _two(streamable_http_client(self.config.url, http_client=client))
        parameters = StdioServerParameters(
            command=self.config.command or "",
            args=list(self.config.args),
            env={**os.environ, **self.config.env},
            cwd=self.config.cwd,
        )
        # The server's stderr goes to ours, so its complaints show in the worker's log.
        return stdio_client(parameters, errlog=sys.stderr)

    async def _on_message(self, message: object) -> None:
        if isinstance(message, ServerNotification) and isinstance(message.root, ToolListChangedNotification):
            log.info("mcp.tools_changed", server=self.config.name)
            self.on_tools_changed()


async def _within(coroutine: Awaitable[T], timeout: float) -> T:
    return await asyncio.wait_for(coroutine, timeout)


class _two:
    """The streamable HTTP client yields three things (the third a session id getter); use two."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aenter__(self) -> tuple[Any, Any]:
        read, write, _ = await self.inner.__aenter__()
        return read, write

    async def __aexit__(self, *exc: object) -> bool | None:
        result: bool | None = await self.inner.__aexit__(*exc)
        return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
