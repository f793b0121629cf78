"""``GET /metrics``: this host's process metrics plus the Redis gauges, in Prometheus's text format.

With ``PROMETHEUS_MULTIPROC_DIR`` the counts are summed over the files every process on this
host wrote there, dead processes included (a counter keeps what a killed work horse
counted). Without it, they are this process's own.

The route takes a bearer: ``OUTERLOOP_METRICS_TOKEN`` (a credential that can read metrics and
nothing else, for the scraper) or any API credential. The web app usually faces the
internet for Slack; agent and tool names and volumes are not for everyone.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import redis
from fastapi import Depends, FastAPI, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

import bot.metrics.instruments  # noqa: F401  (every metric exists, at zero, from the first scrape)
from bot.metrics.multiproc import directory
from bot.metrics.redis_state import RedisState
from bot.runtime import Runtime
from bot.web.identity import authenticate

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def render(connection: redis.Redis) -> bytes:
    """The scrape: process metrics (this host's, or this process's) and then Redis's state."""
    shared = directory()
    if shared is not None:
        from prometheus_client import multiprocess

        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes, str(shared))  # type: ignore[no-untyped-call]
        text = generate_latest(processes)
    else:
        text = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(RedisState(connection))
    return text + generate_latest(state)


def mount(app: FastAPI, rt: Runtime) -> None:
    """Serve ``GET /metrics`` to the scraper's token or an API credential."""

    def scraper(request: Request, credentials: Credentials) -> None:
        bearer = credentials.credentials if credentials else None
        wanted = rt.settings.metrics_token
        if bearer is not None and wanted and hmac.compare_digest(bearer.encode(), wanted.encode()):
            return
        authenticate(bearer, rt.settings.api_token, request.app.state.api_tokens)

    @app.get("/metrics", dependencies=[Depends(scraper)], response_class=Response, include_in_schema=False)
    def metrics() -> Response:
        return Response(render(rt.connection), media_type=CONTENT_TYPE_LATEST)
