"""The benchmarks measure what they claim: every case runs and is reported."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.__main__ import main


def test_bench_long_reports_folding_and_rendering_for_each_length() -> None:
    result = CliRunner().invoke(main, ["long", "--events", "10", "--events", "40"])
    assert result.exit_code == 0, result.output
    for work in ("bare list append", "folding (replay)", "rendering the context"):
        rows = [line for line in result.output.splitlines() if line.startswith(work)]
        assert [row.split()[len(work.split())] for row in rows] == ["10", "40"], result.output
    assert "load average at start" in result.output
    steps = [line.split()[3] for line in result.output.splitlines() if line.startswith("a whole step")]
    assert steps == ["10", "40"], result.output


def test_bench_inflight_finishes_every_conversation_and_makes_each_model_call_once() -> None:
    result = CliRunner().invoke(
        main, ["inflight", "--conversations", "4", "--delay", "0.05", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    rows = [
        line.split() for line in result.output.splitlines() if line.startswith(("one asyncio", "Outerloop"))
    ]
    assert len(rows) == 2, result.output
    for row in rows:
        convs, done, calls, twice = (int(value) for value in row[-7:-3])
        assert (convs, done, calls, twice) == (4, 4, 8, 0), result.output


def test_bench_peer_runs_every_thread_to_done_on_every_side() -> None:
    pytest.importorskip("langgraph", reason="the bench extra is not installed")
    result = CliRunner().invoke(main, ["peer", "--threads", "3"])
    assert result.exit_code == 0, result.output
    assert "Outerloop / LangGraph per thread" in result.output
    assert "Floor / LangGraph per thread" in result.output
    rows = [
        line for line in result.output.splitlines() if line.startswith(("Outerloop,", "Floor:", "LangGraph,"))
    ]
    assert len(rows) == 3, result.output
