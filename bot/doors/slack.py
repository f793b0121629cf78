"""The Slack channel wired in: its config from settings, ``POST /slack/events``, Socket Mode.

HTTP is served when ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET`` are set; Socket
Mode runs inside ``outerloop web`` when ``SLACK_APP_TOKEN`` is set too. The request's
signature is checked on the raw body before Bolt parses anything; Bolt's own Starlette
adapter then converts requests and responses, and the dispatch runs in the thread
pool, so a listener waiting on Redis never holds up the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog
from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_bolt.error import BoltError
from slack_sdk.errors import SlackClientError

from bot.delivery.outbound import slack_config
from bot.web.outage import OUTAGE_ERRORS, Outage
from channels.slack.app import build_app
from channels.slack.config import SlackConfig
from channels.slack.payload import Malformed, check_payload
from channels.slack.signature import Unsigned, verify_request

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = structlog.get_logger(__name__)

EVENTS_PATH = "/slack/events"
DISPATCH_THREADS = 8
"""Slack requests handled at once. Each is a few milliseconds of Redis round trips; more
threads than this only fight over the GIL and the Redis connection pool's lock, and a
burst that grows the pool stalls every request in flight while connections are made."""


class SlackUnavailable(RuntimeError):
    """Slack refused the bot token or could not be reached when the channel started."""


def bolt_app(rt: Runtime, config: SlackConfig, outage: Outage | None = None) -> App:
    """The Bolt app for ``rt``; raises ``UnknownAgent`` or ``SlackUnavailable`` at start-up, not
    at the first message. With ``outage``, a Redis outage is answered 503 and logged once."""
    for agent in (config.agent, *config.channels.values()):
        rt.agents.get(agent)
    config = replace(config, agents=frozenset(spec.name for spec in rt.agents))

    def unavailable(error: Exception) -> bool:
        if outage is None or not isinstance(error, OUTAGE_ERRORS):
            return False
        outage.began(error)
        return True

    try:
        return build_app(rt, config, unavailable)
    except (BoltError, SlackClientError) as exc:
        raise SlackUnavailable(
            f"Slack did not accept SLACK_BOT_TOKEN at {config.api_url} ({exc}); "
            "check the token (xoxb-...) and SLACK_API_URL"
        ) from exc


def mount(app: FastAPI, rt: Runtime, outage: Outage) -> None:
    """Serve Slack's Events API and interactivity at ``POST /slack/events``, if configured."""
    config = slack_config(rt.settings)
    if config is None or not config.signing_secret:
        return
    signing_secret = config.signing_secret
    bolt = bolt_app(rt, config, outage)
    dispatchers = CapacityLimiter(DISPATCH_THREADS)

    @app.post(EVENTS_PATH, include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()  # at most the web app's body limit (bot.web.limits)
        try:
            verify_request(signing_secret, request.headers, body, time.time())
            check_payload(body.decode(), request.headers.get("content-type"))
        except Unsigned as exc:
            log.info("slack.rejected", status=401, reason=str(exc), size=len(body))
            return JSONResponse({"detail": str(exc)}, status_code=401)
        except Malformed as exc:
            log.warning("slack.rejected", status=400, reason=str(exc), size=len(body))
            return JSONResponse({"detail": str(exc)}, status_code=400)
        response = await to_thread.run_sync(
            bolt.dispatch, to_bolt_request(request, body), limiter=dispatchers
        )
        return to_starlette_response(response)


@contextmanager
def socket_mode(rt: Runtime) -> Iterator[SocketModeHandler | None]:
    """Receive Slack events over Socket Mode while the block runs, if ``SLACK_APP_TOKEN`` is set."""
    config = slack_config(rt.settings)
    if config is None or not config.app_token:
        yield None
        return
    handler = SocketModeHandler(bolt_app(rt, config), app_token=config.app_token)
    handler.connect()  # type: ignore[no-untyped-call]
    log.info("slack.socket_mode_connected")
    try:
        yield handler
    finally:
        handler.close()  # type: ignore[no-untyped-call]
