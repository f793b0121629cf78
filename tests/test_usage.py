"""Usage and cost: the tokens the Messages API counted reach the log, `show` and the API, priced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.events import Forked, ModelDecided, Usage
from agent.thread import Status, replay
from bot.runtime import Runtime
from bot.settings import Settings
from bot.usage.prices import load_prices
from bot.usage.tokens import cost_text, spent
from bot.web.app import create_app
from channels.config import ConfigError
from tests.fake_anthropic import FakeAnthropic, tool_use_reply
from tests.services import Workers, serve, wait_for
from tests.test_cli import outerloop

FIRST = {
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_read_input_tokens": 3000,
    "cache_creation_input_tokens": 500,
}
SECOND = {"input_tokens": 1200, "output_tokens": 50, "cache_read_input_tokens": 3500}
# claude-sonnet-4-5: $3 input, $15 output, $3.75 cache writes, $0.30 cache reads per million tokens.
COST = (1000 * 3 + 200 * 15 + 3000 * 0.3 + 500 * 3.75 + 1200 * 3 + 50 * 15 + 3500 * 0.3) / 1_000_000


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def test_usage_from_the_messages_api_reaches_the_log_show_and_the_api(
    env: dict[str, str], fake: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_env = {**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.base_url}
    fake.script(
        tool_use_reply("note", {"text": "hi"}, model="claude-sonnet-4-5-20250929", usage=FIRST),
        tool_use_reply("done_for_now", {"message": "noted"}, model="claude-sonnet-4-5", usage=SECOND),
    )
    for name, value in api_env.items():
        monkeypatch.setenv(name, value)
    rt = Runtime.from_settings(Settings())
    thread_id = outerloop("launch", "note hi", "--agent", "notes", env=api_env).strip()
    workers = Workers(api_env, tmp_path / "processes.log")  # a worker process and a caller process
    try:
        workers.start(1)
        thread = wait_for(
            lambda: (t := rt.load(thread_id)).status is Status.DONE and t, "the thread done", 60
        )
    finally:
        workers.stop_all()

    first, second = [e for e in thread.events if isinstance(e, ModelDecided)]
    assert first.usage == Usage(**FIRST) and second.usage == Usage(**SECOND)
    assert (first.model, second.model) == ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5")
    assert first.stop_reason == second.stop_reason == "tool_use"
    assert first.latency > 0 and second.latency > 0

    shown = outerloop("show", thread_id, env=api_env)
    assert "usage: 2 model calls, 2,200 in (+6,500 cache read, 500 cache write), 250 out" in shown
    assert shown.rstrip().endswith(f"${COST:.4f}")
    with serve(create_app(rt)) as url:
        answer = httpx.get(f"{url}/threads/{thread_id}", headers={"Authorization": "Bearer test-token"})
    assert answer.status_code == 200
    usage = answer.json()["usage"]
    assert usage["cost_usd"] == pytest.approx(COST) and usage["unpriced_models"] == []
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"]) == (2, 2200, 250)
    assert (usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (6500, 500)
    assert set(answer.json()) == {"id", "agent", "status", "pending", "events", "usage"}


def test_reduce_derives_nothing_from_usage(runtime: Runtime) -> None:
    """A log whose calls' usage, model, latency and stop reason are blanked folds to the same state."""
    thread_id = runtime.launch("notes", "hi").thread.id
    thread = runtime.load(thread_id)
    decided = ModelDecided(
        request_id="r", basis=1, tool="note", arguments={"text": "x"}, model="claude-haiku-4-5",
        stop_reason="tool_use", usage=Usage(input_tokens=5, output_tokens=7), latency=1.5,
    )  # fmt: skip
    events = [*thread.events, decided]
    blanked = {"usage": Usage(), "model": "", "latency": 0.0, "stop_reason": None}
    blank = [*thread.events, decided.model_copy(update=blanked)]
    assert replay("t", "notes", events).model_dump(exclude={"events"}) == replay(
        "t", "notes", blank
    ).model_dump(exclude={"events"})


def decision(model: str, **tokens: int) -> ModelDecided:
    return ModelDecided(
        request_id="r", basis=0, tool="note", arguments={}, model=model, usage=Usage(**tokens)
    )


def test_each_kind_of_token_is_priced_and_a_dated_model_id_takes_its_models_price() -> None:
    prices = load_prices()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert prices.cost("claude-haiku-4-5-20251001", usage) == pytest.approx(1.0 + 5.0)
    assert prices.cost("claude-opus-4-5", Usage(cache_read_input_tokens=2_000_000)) == pytest.approx(1.0)
    assert prices.cost("claude-opus-4-5", Usage(cache_creation_input_tokens=1_000_000)) == pytest.approx(6.25)
    assert prices.cost("claude-sonnet-5-5", usage) == pytest.approx(2.0 + 10.0)


def test_a_long_prompt_pays_the_long_prices_for_all_its_tokens() -> None:
    prices = load_prices()
    short = Usage(input_tokens=60_000, cache_read_input_tokens=40_000, output_tokens=1000)
    long = Usage(input_tokens=60_001, cache_read_input_tokens=40_000, output_tokens=1000)
    assert prices.cost("claude-haiku-5-5", short) == pytest.approx((60_000 * 0.1 + 40_000 * 0.01 + 500) / 1e6)
    assert prices.cost("claude-haiku-5-5", long) == pytest.approx((60_001 * 0.5 + 40_000 * 0.05 + 2500) / 1e6)


def test_a_model_without_a_price_costs_unknown_not_zero() -> None:
    prices = load_prices()
    events = [decision("claude-haiku-4-5", input_tokens=1000), decision("claude-future-9", input_tokens=1000)]
    spend = spent(events, prices)
    assert spend.cost is None and spend.unpriced == {"claude-future-9"}
    assert spend.as_json()["cost_usd"] is None
    assert cost_text(spend) == "cost unknown (no price for claude-future-9)"
    assert spent([decision("", input_tokens=0)], prices).cost == 0.0, "a scripted step costs nothing"


def test_a_price_file_replaces_and_adds_models_and_a_wrong_one_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(
        "[models.claude-haiku-4-5]\ninput = 2.0\noutput = 4.0\ncache_write = 0.0\ncache_read = 0.0\n"
        "[models.claude-future-9]\ninput = 1.0\noutput = 1.0\ncache_write = 1.0\ncache_read = 1.0\n"
    )
    prices = load_prices(path)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert prices.cost("claude-haiku-4-5", usage) == pytest.approx(6.0)
    assert prices.cost("claude-future-9", usage) == pytest.approx(2.0)
    assert prices.cost("claude-opus-4-5", usage) == pytest.approx(30.0), "the others keep their defaults"

    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[models.claude-x]\ninput = -1\noutput = 1\ncache_write = 1\ncache_read = 1\n")
    with pytest.raises(ConfigError, match=r"\[models.claude-x\]: input: Input should be greater"):
        load_prices(wrong)


def test_a_fork_counts_only_the_calls_made_after_it() -> None:
    prices = load_prices()
    copied = decision("claude-haiku-4-5", output_tokens=1_000_000)
    own = decision("claude-haiku-4-5", input_tokens=1_000_000)
    spend = spent([copied, Forked(source="s", kept=1), own], prices)
    assert (spend.calls, spend.cost) == (1, pytest.approx(1.0))
