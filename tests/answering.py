"""Advancing a thread in-process with the caller's work done in-process too.

A worker never waits on the model: it records a request and lets go, and a caller process
answers it (``bot.model.caller``). Tests that run a thread in-process up to a human or to its end
alternate the two here, with the real caller code answering against the runtime's model.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from agent.events import Origin, Trigger, new_id
from agent.thread import Thread
from bot.model.caller import Caller
from bot.runtime import Runtime
from bot.work.worker import advance_thread


def advance_and_answer(rt: Runtime, thread_id: str) -> Thread | None:
    """``advance_thread``, answering each model request it leaves, until the thread waits on
    something else (a human, a holder that may be alive), ends, or is busy (None)."""
    thread = advance_thread(rt, thread_id)
    while thread is not None and thread.deciding is not None:
        # In a thread of its own: the caller may be a test that runs an event loop (Playwright).
        with ThreadPoolExecutor(1) as own_thread:
            own_thread.submit(asyncio.run, Caller(rt).answer_waiting()).result()
        thread = advance_thread(rt, thread_id)
    return thread


def queued(rt: Runtime, agent: str, text: str) -> str:
    """A new thread whose first step is a worker's, queued for one: what launching an agent with
    prefetch hooks does (a launch of any other agent asks the model itself)."""
    thread = rt.store.create(
        new_id(), agent, Trigger(text=text, origin=Origin(channel="api", sender="api"))
    ).thread
    rt.enqueue(thread.id)
    return thread.id
