"""The metrics, created once per process. Labels are bounded sets: agent, status, channel,
tool, model, token kind, outcome; never a thread, request or person."""

from __future__ import annotations

from bot.metrics.multiproc import ensure_directory

ensure_directory()  # before prometheus-client is imported: it opens its files at import

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402

MINUTES = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Buckets for work that takes from milliseconds (a read) to half an hour (a deploy)."""
MODEL = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
HUMAN = (10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 3 * 3600.0, 8 * 3600.0, 86400.0, 3 * 86400.0)
"""Buckets for people, who answer within seconds or after a weekend."""

threads_started = Counter(
    "outerloop_threads_started",
    "Threads started, by agent and the channel of their trigger.",
    ["agent", "channel"],
)
threads_finished = Counter(
    "outerloop_threads_finished",
    "Threads that reached done, failed or cancelled (a done thread reopened by a message counts again).",
    ["agent", "status"],
)
steps = Counter("outerloop_steps", "Steps of the agent loop that workers ran.", ["agent"])
step_seconds = Histogram(
    "outerloop_step_seconds",
    "Worker time of one step (tool runs included; model waits are not).",
    ["agent"],
    buckets=MINUTES,
)
model_calls = Counter("outerloop_model_calls", "Model answers recorded.", ["agent", "model"])
model_errors = Counter("outerloop_model_errors", "Model calls that ended in an error.", ["agent"])
model_seconds = Histogram(
    "outerloop_model_seconds",
    "Time from asking the model to its answer, retries included.",
    ["model"],
    buckets=MODEL,
)
model_tokens = Counter(
    "outerloop_model_tokens",
    "Tokens the model reported, by kind (input, output, cache_read, cache_write).",
    ["agent", "model", "kind"],
)
tool_calls = Counter(
    "outerloop_tool_calls", "Tool calls that ended, by outcome (ok, error, interrupted).", ["tool", "outcome"]
)
tool_seconds = Histogram(
    "outerloop_tool_seconds",
    "Time from a tool call's record to its result (interrupted calls are not timed).",
    ["tool"],
    buckets=MINUTES,
)
human_answer_seconds = Histogram(
    "outerloop_human_answer_seconds",
    "Time from a human request to the answer that settled it (approved, rejected, answered).",
    ["agent", "kind", "outcome"],
    buckets=HUMAN,
)
requests_expired = Counter(
    "outerloop_requests_expired",
    "Human requests past their deadline, by what followed.",
    ["agent", "outcome"],
)
deliveries = Counter(
    "outerloop_deliveries",
    "Delivery attempts through a channel: delivered, retried (failed, tried again later) or failed for good.",
    ["channel", "outcome"],
)
jobs_running = Gauge(
    "outerloop_jobs_running", "Worker processes running a job now.", ["queue"], multiprocess_mode="livesum"
)
