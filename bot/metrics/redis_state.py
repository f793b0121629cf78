"""Gauges of what is state in Redis, read when Prometheus scrapes: shared by every host, so
any web process reports them whole, and no process has to keep them up to date.

One scrape costs two pipelined round trips: one for the queues and indexes, one for the
``updated_at`` of each thread waiting on a person (to find the oldest request).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import redis
import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.thread import Status
from bot.delivery import outbox
from bot.model import queue as model_queue
from bot.runtime import QUEUE
from bot.state.store import key

log = structlog.get_logger(__name__)

QUEUES = {"advance": QUEUE, "deliver": outbox.QUEUE}
"""The RQ queues by what their jobs do."""
RQ_QUEUE_PREFIX = "rq:queue:"
WAITING = Status.AWAITING_HUMAN


class RedisState(Collector):
    """Reads queue depths, threads by status and the requests waiting on people and the model."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("outerloop_redis_up", "Whether the scrape could read Redis (1) or not (0).")
        try:
            families = list(self._read(time.time()))
        except redis.RedisError as exc:  # a scrape during an outage says so instead of failing
            log.warning("metrics.redis_unavailable", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, now: float) -> Iterator[GaugeMetricFamily]:
        pipe = self.connection.pipeline(transaction=False)
        for name in QUEUES.values():
            pipe.llen(RQ_QUEUE_PREFIX + name)
        pipe.zcard(key("outbox"))
        for status in Status:
            pipe.zcard(key("by-status", status.value))
        pipe.zcard(model_queue.ASKING)
        pipe.hlen(model_queue.CLAIMS)
        pipe.zrange(model_queue.ASKING, 0, 0, withscores=True)
        pipe.zrange(key("by-status", WAITING.value), 0, -1)
        answers = iter(pipe.execute())

        depth = GaugeMetricFamily("outerloop_queue_depth", "Jobs waiting in an RQ queue.", labels=["queue"])
        for job in QUEUES:
            depth.add_metric([job], next(answers))
        yield depth
        yield _gauge(
            "outerloop_deliveries_owed", "Deliveries stored as owed and not yet done.", next(answers)
        )
        threads = GaugeMetricFamily("outerloop_threads", "Threads by status now.", labels=["status"])
        for status in Status:
            threads.add_metric([status.value], next(answers))
        yield threads
        queued, claimed, oldest_asking = next(answers), next(answers), next(answers)
        asking = GaugeMetricFamily(
            "outerloop_model_requests",
            "Model requests waiting for a caller or held by one.",
            labels=["state"],
        )
        asking.add_metric(["queued"], queued)
        asking.add_metric(["claimed"], claimed)
        yield asking
        yield _gauge(
            "outerloop_model_request_oldest_seconds",
            "Age of the oldest model request no caller has claimed (0 when none).",
            now - oldest_asking[0][1] if oldest_asking else 0.0,
        )
        waiting = [raw.decode() for raw in next(answers)]
        yield _gauge("outerloop_pending_requests", "Threads waiting on a person's answer.", len(waiting))
        yield _gauge(
            "outerloop_pending_request_oldest_seconds",
            "How long the thread waiting longest on a person has waited (0 when none).",
            self._oldest_wait(waiting, now),
        )

    def _oldest_wait(self, thread_ids: list[str], now: float) -> float:
        """A waiting thread's last change is the request it waits on (or its latest reminder)."""
        if not thread_ids:
            return 0.0
        pipe = self.connection.pipeline(transaction=False)
        for thread_id in thread_ids:
            pipe.hget(key("thread", thread_id, "meta"), "updated_at")
        changed = [float(value) for value in pipe.execute() if value is not None]
        return max(0.0, now - min(changed)) if changed else 0.0


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)
