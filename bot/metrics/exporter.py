"""``OUTERLOOP_METRICS_PORT``: a host's process metrics for Prometheus, from the processes
that serve no web app (``outerloop worker``, ``caller``, ``scheduler``, ``smtp``).

Where each process kind runs on machines of its own (Fly.io's process groups), the web app
cannot read the worker's files; the worker serves them itself on this port. A pool's
processes share one directory: ``PROMETHEUS_MULTIPROC_DIR`` when set, else a fresh one this
command makes before the pool forks. The Redis gauges are left to ``GET /metrics`` of the web
app: they are the same whichever process reads them, and counted once there.

The port answers anyone who reaches it: bind it (``OUTERLOOP_METRICS_HOST``) to a private
address only.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import structlog

from bot.metrics import multiproc
from bot.settings import Settings

log = structlog.get_logger(__name__)


def serve(settings: Settings) -> None:
    """Serve this host's process metrics at ``/metrics`` on ``OUTERLOOP_METRICS_PORT``, if set;
    call it before anything imports prometheus-client (see ``bot.metrics.multiproc``)."""
    if settings.metrics_port is None:
        return
    if multiproc.directory() is None:
        private = Path(tempfile.mkdtemp(prefix="outerloop-metrics-"))
        multiproc.start_afresh(private)
        atexit.register(shutil.rmtree, private, ignore_errors=True)  # the pool's children never run it
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    import bot.metrics.instruments  # noqa: F401  (every metric exists, at zero, from the first scrape)

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, str(multiproc.directory()))  # type: ignore[no-untyped-call]
    start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    log.info("metrics.serving", host=settings.metrics_host, port=settings.metrics_port)
