"""Live updates as server-sent events: a page listens, and reloads its live parts on ``changed``.

Each stream polls a cheap fingerprint of what its page shows (a thread's version; the
waiting threads; the newest threads) once a ``POLL`` and says ``changed`` when it moves.
The page then fetches itself again and swaps the parts marked ``data-live``, so the HTML
has one source: the templates. A stream ends after ``STREAM_LIFE``, or on a Redis error;
the browser's ``EventSource`` reconnects by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import redis
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent.thread import Status
from bot.console import access
from bot.console.app import console_of, person_of
from bot.state.store import Store, ThreadNotFound

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/console/live", include_in_schema=False)

POLL = 0.5
"""Seconds between two looks at Redis for one open page."""
HEARTBEAT = 15.0
"""Seconds of quiet after which a comment line keeps proxies from closing the stream."""
STREAM_LIFE = 300.0
"""Seconds a stream lasts; the browser then reconnects (and a web process can stop)."""


async def _changes(request: Request, fingerprint: Callable[[], str]) -> AsyncIterator[str]:
    try:
        last = await run_in_threadpool(fingerprint)
        yield "retry: 1000\nevent: ready\ndata: \n\n"
        started = quiet = time.monotonic()
        while time.monotonic() - started < STREAM_LIFE and not await request.is_disconnected():
            await asyncio.sleep(POLL)
            current = await run_in_threadpool(fingerprint)
            if current != last:
                last, quiet = current, time.monotonic()
                yield "event: changed\ndata: \n\n"
            elif time.monotonic() - quiet > HEARTBEAT:
                quiet = time.monotonic()
                yield ": still here\n\n"
    except (redis.RedisError, ThreadNotFound) as error:
        log.info("console.stream_ended", reason=type(error).__name__)


def _stream(request: Request, fingerprint: Callable[[], str]) -> StreamingResponse:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_changes(request, fingerprint), media_type="text/event-stream", headers=headers)


def _versions(store: Store, thread_ids: list[str]) -> str:
    found = []
    for thread_id in thread_ids:
        try:
            found.append(f"{thread_id}:{store.summary(thread_id).version}")
        except ThreadNotFound:
            continue
    return ",".join(found)


@router.get("/inbox")
def inbox(request: Request) -> StreamingResponse:
    store = console_of(request).rt.store
    person_of(request)
    return _stream(request, lambda: _versions(store, store.ids(Status.AWAITING_HUMAN)))


@router.get("/threads")
def threads(request: Request) -> StreamingResponse:
    """Changes among the newest threads: any list page's content may have moved."""
    store = console_of(request).rt.store
    person_of(request)

    def newest() -> str:
        return ",".join(f"{s.id}:{s.version}" for s in store.page(limit=access.PAGE_SIZE).threads)

    return _stream(request, newest)


@router.get("/threads/{thread_id}")
def thread(request: Request, thread_id: str) -> Response:
    console, (session, person) = console_of(request), person_of(request)
    store = console.rt.store
    try:
        visible = access.may_see(console.rt.settings, store.load(thread_id[:100]), person)
    except ThreadNotFound:
        visible = False
    if not visible:
        return console.finish(
            JSONResponse({"detail": "no such thread that you may see"}, status_code=404), session
        )
    return _stream(request, lambda: str(store.summary(thread_id[:100]).version))
