"""The Anthropic Messages API as a ``Model``: one tool call per step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict, cast

import anthropic
from anthropic.types import Message, MessageParam, TextBlockParam, ToolChoiceAutoParam, ToolParam

from agent.events import Usage
from agent.model import ModelCall, ModelOutputInvalid, ModelRequest, ModelUnavailable

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_TOKENS = 4096
"""Room for the thinking that current models do before their tool call, which counts as output."""
_NOT_A_MESSAGE = "something that is not a Messages API response (is the base URL right?)"


class AnthropicModel:
    """Calls ``messages.create`` with the tools and ``tool_choice: auto``, one call at a time.

    Not ``any``: models that think before answering (Sonnet 5.5, our default, always does)
    refuse forced tool use with a 400. The prompts ask for exactly one tool call; an answer
    with text alone becomes a ``ModelOutputInvalid``, which goes back into the context as an
    error the model reads, within the agent's error limit (factor 9).

    Transient failures (429, 5xx, 529 overloaded, connection errors) are retried by
    the client with backoff (``max_retries``); what still fails, like a success
    whose body is not a message, becomes a ``ModelUnavailable``, which the loop
    records as an error event. The system prompt carries ``cache_control`` because
    it is identical on every step.
    """

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        max_retries: int = 3,
        timeout: float = 60.0,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout
        )
        self.model = model
        self.max_tokens = max_tokens
        self.sampling = dict(sampling or {})
        """Further ``messages.create`` parameters (temperature, top_p, ...), as an agent names them."""

    def decide(self, request: ModelRequest) -> ModelCall:
        try:
            message = self.client.messages.create(
                **_params(self.model, self.max_tokens, request), **self.sampling
            )
        except _FAILURES as exc:
            raise _unavailable(exc) from exc
        return _call(message)


class AsyncAnthropicModel:
    """``AnthropicModel`` for the caller process: the same request and answer, on ``AsyncAnthropic``.

    The client does not retry: the caller does, so that every caller process backs off
    together when the API says so (``retry-after``), and so that a retry waits in the
    caller's rate limit like any other call."""

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout
        )
        self.model = model
        self.max_tokens = max_tokens
        self.sampling = dict(sampling or {})

    async def decide(self, request: ModelRequest) -> ModelCall:
        try:
            message = await self.client.messages.create(
                **_params(self.model, self.max_tokens, request), **self.sampling
            )
        except _FAILURES as exc:
            raise _unavailable(exc) from exc
        return _call(message)


class _Params(TypedDict):
    model: str
    max_tokens: int
    system: list[TextBlockParam]
    messages: list[MessageParam]
    tools: list[ToolParam]
    tool_choice: ToolChoiceAutoParam


def _params(model: str, max_tokens: int, request: ModelRequest) -> _Params:
    system: TextBlockParam = {
        "type": "text",
        "text": request.system,
        "cache_control": {"type": "ephemeral"},
    }
    user: MessageParam = {"role": "user", "content": request.context}
    choice: ToolChoiceAutoParam = {"type": "auto", "disable_parallel_tool_use": True}
    # Our schemas come from pydantic as plain dicts of exactly the ToolParam shape.
    tools = [cast(ToolParam, tool) for tool in request.tools]
    return {
        "model": model,
        "max_tokens": max_tokens,
        "system": [system],
        "messages": [user],
        "tools": tools,
        "tool_choice": choice,
    }


_FAILURES = (anthropic.APIStatusError, anthropic.APIConnectionError, json.JSONDecodeError)
RETRYABLE_STATUS = frozenset({408, 409, 429, 529})
"""Answers worth another try besides 5xx, as the SDK's own retries count them."""


def _unavailable(exc: Exception) -> ModelUnavailable:
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        return ModelUnavailable(
            f"model API answered {status}: {_reason(exc)}",
            retryable=status in RETRYABLE_STATUS or status >= 500,
            retry_after=retry_after(exc.response.headers),
            status=status,
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelUnavailable(f"model API unreachable: {exc}", retryable=True)
    return ModelUnavailable(f"model API answered with {_NOT_A_MESSAGE}: {exc}")


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the API asks us to wait (``retry-after-ms``, else ``retry-after``), if it says."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _call(message: object) -> ModelCall:
    # The SDK builds responses without validating them, so a 200 from a proxy or a
    # wrong base_url arrives as a str, a list, or a Message without content.
    content = getattr(message, "content", None)
    if not isinstance(content, list) or not isinstance(message, Message):
        raise ModelUnavailable(f"model API answered with {_NOT_A_MESSAGE}: {message!r:.200}")
    calls = [block for block in content if block.type == "tool_use"]
    if len(calls) != 1:
        said = " (you answered with text alone: call one of the tools instead)" if not calls else ""
        raise ModelOutputInvalid(
            f"expected exactly one tool call, got {len(calls)} (stop_reason={message.stop_reason}){said}"
        )
    arguments: Any = calls[0].input
    if not isinstance(arguments, dict):
        raise ModelOutputInvalid(f"tool input for {calls[0].name} is not an object")
    return ModelCall(
        calls[0].name, arguments, model=message.model, stop_reason=message.stop_reason, usage=_usage(message)
    )


def _usage(message: Message) -> Usage:
    usage = getattr(message, "usage", None)
    return Usage(
        input_tokens=getattr(usage, "input_tokens", 0) or 0,
        output_tokens=getattr(usage, "output_tokens", 0) or 0,
        cache_read_input_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
        cache_creation_input_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
    )


def _reason(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message
