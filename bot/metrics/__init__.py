"""Prometheus metrics: what the agents do, counted where it happens, served at ``GET /metrics``.

- ``instruments``: the counters and histograms, one set per process; with
  ``PROMETHEUS_MULTIPROC_DIR`` each process writes its own files there, so RQ's workers, the
  caller, the scheduler and the inbox on one host add up (``multiproc``);
- ``observe``: maps each stored event (the store calls it after every applied append) and
  each worker step and delivery to those instruments;
- ``redis_state``: what is state in Redis (queue depth, pending requests, threads by status),
  read when scraped, never counted by a process;
- ``exposition``: the text Prometheus scrapes, and the ``/metrics`` route;
- ``exporter``: the same for processes on hosts of their own (``OUTERLOOP_METRICS_PORT``).
"""
