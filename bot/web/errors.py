"""One error shape for the whole web app: ``{"detail": str, "errors"?: [...]}``, echoing little of the input.

FastAPI's own validation answer lists every error with the whole offending input
(a 10 MB text comes back as a 10 MB error). Here each error keeps its location,
message and type, and at most ``INPUT_PREFIX`` characters of its input; the
``detail`` says in one sentence what to fix, including a body that was not sent
as JSON at all.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = structlog.get_logger(__name__)

INPUT_PREFIX = 100
"""Characters of an offending input an error shows: enough to recognise it, never the whole."""
DETAIL_LIMIT = 500
"""Characters of a ``detail``; a longer one is cut."""
SHOWN_ERRORS = 3
"""Errors the ``detail`` sentence names; ``errors`` lists them all."""


def install_error_shapes(app: FastAPI) -> None:
    """Answer validation errors and HTTP errors (404 route, 405 method...) in the app's shape."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)


def short(text: str, limit: int = DETAIL_LIMIT) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_error(error) for error in exc.errors()]
    detail = _not_json(request, errors) or "the request is not valid: " + "; ".join(
        f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in errors[:SHOWN_ERRORS]
    )
    log.info("http.rejected", path=request.url.path, status=422, reason=short(detail))
    return JSONResponse({"detail": short(detail), "errors": errors}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": short(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers)


def _error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error with its input cut to a prefix (inputs are strings, bytes or JSON)."""
    shown: dict[str, Any] = {key: error[key] for key in ("type", "loc", "msg") if key in error}
    if "input" in error:
        value = error["input"]
        if isinstance(value, bytes):
            text = value[: INPUT_PREFIX * 4].decode("utf-8", "replace")
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value, default=str)[: INPUT_PREFIX + 1]
        shown["input"] = short(text, INPUT_PREFIX)
    return shown


def _not_json(request: Request, errors: list[dict[str, Any]]) -> str | None:
    """What to say when a route wanting a JSON body got something else (or nothing labelled)."""
    if not any(tuple(error["loc"]) == ("body",) for error in errors):
        return None
    content_type = request.headers.get("content-type")
    if content_type is None:
        return "send the body as JSON with Content-Type: application/json (no Content-Type was given)"
    header = Message()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    if header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return None
    return f"send the body as JSON with Content-Type: application/json, not {short(content_type, 100)}"
