"""The Anthropic Messages API as a ``Model``: one forced tool call per step."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import anthropic
from anthropic.types import MessageParam, TextBlockParam, ToolChoiceAnyParam, ToolParam

from agent.model import ModelCall, ModelOutputInvalid, ModelRequest, ModelUnavailable

DEFAULT_MODEL = "claude-sonnet-5-5"
_NOT_A_MESSAGE = "something that is not a Messages API response (is the base URL right?)"


class AnthropicModel:
    """Calls ``messages.create`` with ``tool_choice: any`` so the answer is always a tool call.

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
        max_tokens: int = 1024,
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
        system: TextBlockParam = {
            "type": "text",
            "text": request.system,
            "cache_control": {"type": "ephemeral"},
        }
        user: MessageParam = {"role": "user", "content": request.context}
        choice: ToolChoiceAnyParam = {"type": "any", "disable_parallel_tool_use": True}
        # Our schemas come from pydantic as plain dicts of exactly the ToolParam shape.
        tools = [cast(ToolParam, tool) for tool in request.tools]
        try:
            message = self.client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=[system],
                messages=[user],
                tools=tools,
                tool_choice=choice,
                **self.sampling,
            )
        except anthropic.APIStatusError as exc:
            raise ModelUnavailable(f"model API answered {exc.status_code}: {_reason(exc)}") from exc
        except anthropic.APIConnectionError as exc:
            raise ModelUnavailable(f"model API unreachable: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise ModelUnavailable(f"model API answered with {_NOT_A_MESSAGE}: {exc}") from exc
        # The SDK builds responses without validating them, so a 200 from a proxy or a
        # wrong base_url arrives as a str, a list, or a Message without content.
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            raise ModelUnavailable(f"model API answered with {_NOT_A_MESSAGE}: {message!r:.200}")
        calls = [block for block in content if block.type == "tool_use"]
        if len(calls) != 1:
            raise ModelOutputInvalid(
                f"expected exactly one tool call, got {len(calls)} (stop_reason={message.stop_reason})"
            )
        arguments: Any = calls[0].input
        if not isinstance(arguments, dict):
            raise ModelOutputInvalid(f"tool input for {calls[0].name} is not an object")
        return ModelCall(calls[0].name, arguments)


def _reason(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return exc.message
