"""The sweeps: one queued job per thread however often they run, owed deliveries delivered,
ended threads expired, lists paged — against a real Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from agent.events import Cancelled, HumanRequest
from agent.thread import Status
from bot.runtime import Runtime
from bot.state.liveness import Holder
from bot.state.lock import ThreadLock
from bot.state.store import Store, key
from bot.work.recovery import recover_stalled
from bot.work.scheduler import Scheduler
from tests.answering import queued
from tests.channel_helpers import RecordingChannel, run_deliveries, said


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_sweeps_queue_at_most_one_job_per_thread_while_no_worker_runs(runtime: Runtime) -> None:
    ids = [queued(runtime, "notes", f"note {n}") for n in range(50)]
    scheduler = Scheduler(runtime)
    for sweep in range(10):
        scheduler.tick(later(runtime.settings.lock_ttl * (sweep + 2)))
    jobs = [job.args[0] for job in runtime.queue.get_jobs()]
    assert sorted(jobs) == sorted(ids), "every thread has exactly one job"


def test_a_thread_whose_job_was_lost_is_queued_again(runtime: Runtime) -> None:
    thread_id = queued(runtime, "notes", "hello")
    runtime.queue.empty()  # the job is gone; its marker still names it
    assert recover_stalled(runtime, time.time()) == [], "not quiet for a lock's lifetime yet"
    assert recover_stalled(runtime, time.time() + runtime.settings.lock_ttl + 1) == [thread_id]
    assert [job.args[0] for job in runtime.queue.get_jobs()] == [thread_id]


def test_a_delivery_whose_job_was_lost_is_delivered_by_the_sweep(runtime: Runtime) -> None:
    channel = RecordingChannel(interests=frozenset({"human_request"}))
    runtime.outbound["test"] = channel
    thread = runtime.converse("test:room", "notes", said("hi")).thread
    # The process dies between storing the event and queueing its delivery: only the store ran.
    runtime.store.append(thread, HumanRequest(request_id="r1", kind="question", text="you must see this"))
    assert runtime.store.owed(until=time.time()) != []
    run_deliveries(runtime)
    assert channel.shown == [], "no delivery job was queued"

    tick = Scheduler(runtime).tick(later(runtime.settings.delivery_grace + 1))
    assert len(tick.redelivered) == 1
    run_deliveries(runtime)
    assert channel.shown == [("human_request", None)]
    assert runtime.store.owed(until=time.time() + 3600) == [], "nothing owed any more"
    runtime.deliver(thread.id, tick.redelivered[0])
    assert len(channel.shown) == 1, "delivering again shows nothing twice"


def test_lists_page_without_repeats_while_threads_are_created(runtime: Runtime) -> None:
    ids = [runtime.launch("notes", f"n{n}").thread.id for n in range(7)]
    first = runtime.store.page(limit=3)
    runtime.launch("notes", "created while paging")
    second = runtime.store.page(cursor=first.cursor, limit=3)
    third = runtime.store.page(cursor=second.cursor, limit=3)
    seen = [s.id for page in (first, second, third) for s in page.threads]
    assert seen == list(reversed(ids)) and third.cursor is None


def test_lists_filter_by_status_and_agent(runtime: Runtime) -> None:
    notes = runtime.launch("notes", "a").thread
    runtime.launch("deploy", "b")
    runtime.cancel(notes.id, "alice")
    cancelled = runtime.store.page(Status.CANCELLED)
    assert [s.id for s in cancelled.threads] == [notes.id]
    assert [s.agent for s in runtime.store.page(agent="deploy").threads] == ["deploy"]
    assert runtime.store.page(Status.CANCELLED, agent="deploy").threads == []


def test_ended_threads_expire_after_the_retention_period(runtime: Runtime) -> None:
    store = Store(runtime.connection, retention=1)
    kept = store.create("kept", "notes", said("still running")).thread
    ended = store.create("ended", "notes", said("to be cancelled")).thread
    store.append(ended, Cancelled(by="alice"))
    assert runtime.connection.ttl(key("thread", "ended", "events")) > 0
    assert runtime.connection.ttl(key("thread", "kept", "events")) == -1
    time.sleep(1.5)  # the retention period itself
    assert store.forget_expired() == 1
    assert store.ids() == [kept.id]
    assert store.page(Status.CANCELLED).threads == []


def test_retention_forgets_an_ended_threads_routes_and_receipts_and_keeps_the_live_ones(
    runtime: Runtime,
) -> None:
    store = Store(runtime.connection, retention=1)
    for thread_id in ("kept", "ended"):
        thread = store.create(thread_id, "notes", said("hi")).thread
        assert store.bind_route(f"slack:T1:C1:{thread_id}", thread_id) == thread_id
        assert store.bind_route(f"slack:T1:C1:{thread_id}", "another") == thread_id, "the first one wins"
        store.bind_route(f"mail:<{thread_id}@example.com>", thread_id)
        store.keep_receipt(thread_id, thread.events[0].id, {"channel": "C1", "ts": "1.2"})
    lock = ThreadLock(runtime.connection, "ended", Holder.here())
    assert lock.acquire()
    ended = store.append(store.load("ended"), Cancelled(by="alice"), fence=lock.value).thread
    lock.__exit__(None, None, None)
    store.snapshots.save(ended)
    leftovers = [key("thread", "ended", "snapshot"), key("thread", "ended", "aside"), key("fence", "ended")]
    assert runtime.connection.exists(*leftovers) == 3
    time.sleep(1.5)  # the retention period itself

    assert store.forget_expired() == 1

    assert store.route("slack:T1:C1:ended") is None and store.route("mail:<ended@example.com>") is None
    assert store.receipt(ended.events[0].id) is None
    assert not runtime.connection.keys(f"{key('thread', 'ended')}*"), "nothing of the thread is left"
    assert not runtime.connection.exists(key("fence", "ended"))
    kept = store.load("kept")
    assert store.route("slack:T1:C1:kept") == store.route("mail:<kept@example.com>") == "kept"
    assert store.receipt(kept.events[0].id) == {"channel": "C1", "ts": "1.2"}
    assert store.bind_route("slack:T1:C1:ended", "next") == "next", "the conversation starts afresh"


def test_a_thread_whose_job_was_taken_as_redis_went_away_is_queued_again(runtime: Runtime) -> None:
    thread_id = queued(runtime, "notes", "hello")
    (job_id,) = runtime.queue.get_job_ids()
    # A worker popped the job and lost its connection before it could start it: the job is
    # still marked queued, but no queue holds it any more.
    runtime.connection.lrem(runtime.queue.key, 0, job_id)
    assert recover_stalled(runtime, time.time() + runtime.settings.lock_ttl + 1) == [thread_id]
    assert [job.args[0] for job in runtime.queue.get_jobs()] == [thread_id]
