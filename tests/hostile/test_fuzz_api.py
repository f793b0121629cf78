"""The threads API fuzzed from its own OpenAPI schema (schemathesis): whatever a client sends,
valid or not, with the token or without, the answer is never a 5xx, errors come in the API's
shape, and nothing is logged as an error.

The cases are drawn inside one Hypothesis test (rather than through schemathesis' pytest
plugin), so the schema is the one the served app publishes when the test runs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from tests.hostile.conftest import TOKEN, LogWatch

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
"""Requests per test, over all operations: well under a minute on two cores."""


Cases = st.SearchStrategy[schemathesis.Case[Any]]


@pytest.fixture
def api_cases(base_url: str) -> Cases:
    """Valid and invalid requests to every operation the app's OpenAPI schema lists."""
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base_url}/openapi.json").json())
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "schemathesis reads every operation of the schema"
    return st.sampled_from(operations).flatmap(
        lambda operation: st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )
    )


def answer(base_url: str, case: schemathesis.Case[Any], headers: dict[str, str]) -> int:
    """Send ``case``; check the answer is no server error and an error has the API's shape."""
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code >= 400:
        assert "detail" in response.json(), response.text[:200]
    return int(response.status_code)


@FUZZ
@given(data=st.data())
def test_any_request_with_the_token_gets_no_server_error(
    base_url: str, api_cases: Cases, logs: LogWatch, data: st.DataObject
) -> None:
    answer(base_url, data.draw(api_cases), TOKEN)


@FUZZ
@given(data=st.data())
def test_any_request_without_the_token_is_refused_or_public(
    base_url: str, api_cases: Cases, logs: LogWatch, data: st.DataObject
) -> None:
    case = data.draw(api_cases)
    status = answer(base_url, case, {})
    if case.path.startswith("/threads"):
        # 400 and 422: FastAPI reads the (size-checked) body before it checks the token.
        assert status in (400, 401, 404, 405, 413, 422), status
