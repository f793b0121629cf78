"""Cron schedules (factor 11): one thread per tick, however many schedulers run; missed ticks.

The in-process tests drive ``Scheduler.tick`` with a clock they set (real Redis, real
store); one test runs two real ``outerloop scheduler`` processes on the wall clock.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from agent.definition import UnknownAgent
from agent.events import Origin, Trigger
from bot.model import queue as model_queue
from bot.runtime import Runtime
from bot.settings import Settings
from bot.state.store import key
from bot.work.scheduler import RedisCursors, Scheduler
from channels.config import ConfigError
from channels.cron import Schedule, load_schedules
from tests.services import Workers, cli_args, wait_for
from tests.test_cli import outerloop

T0 = datetime(2025, 1, 15, 8, 59, 30, tzinfo=UTC)


def schedule(**overrides: object) -> Schedule:
    fields: dict[str, object] = {
        "name": "hourly",
        "cron": "0 * * * *",
        "agent": "notes",
        "prompt": "write the hourly report",
        "report_to": "slack:C0123",
    }
    return Schedule.model_validate({**fields, **overrides})


def triggers(runtime: Runtime) -> dict[str, Trigger]:
    """The first trigger of every thread, by its dedupe key."""
    found = {}
    for thread_id in runtime.store.ids():
        trigger = runtime.load(thread_id).trigger
        assert trigger is not None and trigger.key is not None
        found[trigger.key] = trigger
    return found


def test_each_tick_launches_a_thread_that_reports_where_the_schedule_says(runtime: Runtime) -> None:
    scheduler = Scheduler(runtime, [schedule(), schedule(name="mail", report_to="email:ops@example.com")])
    assert scheduler.tick(T0).fired == [], "a schedule seen for the first time starts from now"
    assert scheduler.tick(T0 + timedelta(seconds=20)).fired == []

    fired = scheduler.tick(datetime(2025, 1, 15, 9, 0, 4, tzinfo=UTC)).fired
    assert [(f.schedule, f.tick.isoformat(), f.launched) for f in fired] == [
        ("hourly", "2025-01-15T09:00:00+00:00", True),
        ("mail", "2025-01-15T09:00:00+00:00", True),
    ]
    assert scheduler.tick(datetime(2025, 1, 15, 9, 0, 9, tzinfo=UTC)).fired == [], "a tick fires once"
    found = triggers(runtime)
    assert found["cron:hourly:2025-01-15T09:00:00+00:00"].origin == Origin(
        channel="slack", sender="schedule:hourly", address={"channel": "C0123"}
    )
    assert found["cron:mail:2025-01-15T09:00:00+00:00"].origin == Origin(
        channel="email", sender="schedule:mail", address={"to": "ops@example.com"}
    )
    assert {t.text for t in found.values()} == {"write the hourly report"}
    assert model_queue.waiting(runtime.connection) == 2, "each new thread asks the model"


def test_a_tick_two_schedulers_both_find_due_launches_one_thread(
    runtime: Runtime, settings: Settings
) -> None:
    first = Scheduler(runtime, [schedule()])
    second = Scheduler(Runtime.from_settings(settings), [schedule()])  # its own Redis connection
    first.tick(T0)
    tick = datetime(2025, 1, 15, 9, 0, 2, tzinfo=UTC)
    by_first = first.tick(tick).fired
    # The second scheduler read the cursor before the first moved it past the tick:
    runtime.connection.zadd(key("schedule-cursors"), {"hourly": T0.timestamp()})
    by_second = second.tick(tick).fired

    assert [f.launched for f in by_first] == [True]
    assert [f.launched for f in by_second] == [False]
    assert by_first[0].thread_id == by_second[0].thread_id
    assert len(runtime.store.ids()) == 1


def test_two_schedulers_racing_on_every_tick_launch_each_tick_once(
    runtime: Runtime, settings: Settings
) -> None:
    schedulers = [Scheduler(Runtime.from_settings(settings), [schedule(cron="* * * * *")]) for _ in range(2)]
    ticks = [T0 + timedelta(minutes=n, seconds=1) for n in range(12)]
    barrier = threading.Barrier(2)

    def run(scheduler: Scheduler) -> int:
        launched = 0
        for now in ticks:
            barrier.wait()  # both schedulers tick at the same moment, on their own connections
            launched += sum(f.launched for f in scheduler.tick(now).fired)
        return launched

    with ThreadPoolExecutor(max_workers=2) as pool:
        launched = sum(pool.map(run, schedulers))
    expected = {f"cron:hourly:{now.replace(second=0).isoformat()}" for now in ticks[1:]}
    assert set(triggers(runtime)) == expected
    assert launched == len(expected)


@pytest.mark.parametrize(("catch_up", "launched_on_start"), [("once", 1), ("skip", 0)])
def test_missed_ticks_follow_the_catch_up_policy(
    runtime: Runtime, catch_up: str, launched_on_start: int
) -> None:
    scheduler = Scheduler(runtime, [schedule(catch_up=catch_up)])
    scheduler.tick(T0)
    # No scheduler runs from 09:00 to 12:20: the ticks of 09:00, 10:00, 11:00 and 12:00 are missed.
    on_start = scheduler.tick(datetime(2025, 1, 15, 12, 20, tzinfo=UTC)).fired
    assert [f.tick.isoformat() for f in on_start] == ["2025-01-15T12:00:00+00:00"][:launched_on_start]
    assert scheduler.tick(datetime(2025, 1, 15, 12, 30, tzinfo=UTC)).fired == []

    back_on_time = scheduler.tick(datetime(2025, 1, 15, 13, 0, 3, tzinfo=UTC)).fired
    assert [f.tick.isoformat() for f in back_on_time] == ["2025-01-15T13:00:00+00:00"]
    assert len(runtime.store.ids()) == launched_on_start + 1


def test_a_tick_noticed_within_the_grace_period_is_on_time_not_missed(runtime: Runtime) -> None:
    scheduler = Scheduler(runtime, [schedule(catch_up="skip", grace=120)])
    scheduler.tick(T0)
    fired = scheduler.tick(datetime(2025, 1, 15, 9, 1, 50, tzinfo=UTC)).fired
    assert [f.tick.isoformat() for f in fired] == ["2025-01-15T09:00:00+00:00"]


@pytest.mark.parametrize(
    "nine_in_paris", ["2025-01-15T08:00:00+00:00", "2025-07-15T07:00:00+00:00"], ids=["winter", "summer"]
)
def test_cron_expressions_are_read_in_the_schedules_timezone(runtime: Runtime, nine_in_paris: str) -> None:
    scheduler = Scheduler(runtime, [schedule(name="paris", cron="0 9 * * *", timezone="Europe/Paris")])
    before = datetime.fromisoformat(nine_in_paris) - timedelta(minutes=1)
    scheduler.tick(before)
    fired = scheduler.tick(before + timedelta(minutes=1, seconds=5)).fired
    assert [f.tick.isoformat() for f in fired] == [nine_in_paris]


def test_two_scheduler_processes_launch_each_tick_once(
    runtime: Runtime, workers: Workers, tmp_path: Path
) -> None:
    """Real ``outerloop scheduler`` processes on the wall clock, a schedule firing every second.
    The cursor settles most ticks; when both read it before either moves it, the dedupe key does."""
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(
        '[schedules.every-second]\ncron = "* * * * * *"\nagent = "notes"\n'
        'prompt = "tick"\nreport_to = "slack:C0123"\n'
    )
    workers.env["OUTERLOOP_SCHEDULES"] = str(schedules)
    workers.env["OUTERLOOP_SWEEP_INTERVAL"] = "0.1"
    workers.start(2, args=cli_args("scheduler"))
    wait_for(lambda: len(runtime.store.ids()) >= 4, "four ticks to launch threads")
    workers.stop_all()

    threads = runtime.store.ids()
    assert len(triggers(runtime)) == len(threads), "no tick launched two threads"
    assert workers.log.read_text().count("cron.fired") == len(threads)


def entry(cron: str = "0 9 * * *", agent: str = "notes", report_to: str = "slack:C1", more: str = "") -> str:
    fields = f'cron = "{cron}"\nagent = "{agent}"\nprompt = "p"\nreport_to = "{report_to}"\n'
    return f"[schedules.daily]\n{fields}{more}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (entry(cron="61 * * * *"), "cron: Value error, '61 \\* \\* \\* \\*' is not a cron expression"),
        (entry(report_to="irc:#ops"), "report_to: Value error, 'irc:#ops' is not 'slack:CHANNEL_ID' or"),
        (entry(more='timezone = "Mars/Olympus"\n'), "unknown timezone 'Mars/Olympus'"),
        (entry(more="colour = 3\n"), "colour: Extra inputs are not permitted"),
        ("[schedules.daily\n", "is not valid TOML"),
        ('[schedule.daily]\ncron = "0 9 * * *"\n', "unknown top-level keys \\['schedule'\\]"),
        ('[schedules."bad name"]\n', "names are letters, digits"),
    ],
)
def test_a_wrong_schedules_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_schedules(path)


def test_a_missing_file_or_an_unknown_agent_stops_the_scheduler_at_start(
    runtime: Runtime, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.toml: No such file"):
        load_schedules(tmp_path / "missing.toml")
    path = tmp_path / "schedules.toml"
    path.write_text(entry(agent="nobody"))
    with pytest.raises(UnknownAgent, match="no agent named 'nobody'; known agents: deploy, holds, notes"):
        Scheduler(runtime, load_schedules(path))
    path.write_text(entry(more="grace = 0.25\n"))
    with pytest.raises(ConfigError, match=r"grace \(0.25 s\) must be longer than OUTERLOOP_SWEEP_INTERVAL"):
        Scheduler(runtime, load_schedules(path))


def test_outerloop_scheduler_refuses_a_wrong_schedules_file_in_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(entry(cron="0 25 * * *"))
    said = outerloop("scheduler", env={**env, "OUTERLOOP_SCHEDULES": str(path)}, check=False)
    assert f"Error: {path}: [schedules.daily]: cron: Value error, '0 25 * * *' is not a cron" in said
    assert "Traceback" not in said


def test_a_scheduler_whose_redis_is_away_logs_and_keeps_ticking(settings: Settings) -> None:
    settings.redis_url = "redis://127.0.0.1:1/0"
    rt = Runtime.from_settings(settings)
    tick = Scheduler(rt, [schedule()]).tick(T0)
    assert (tick.recovered, tick.fired, tick.expired) == ([], [], [])
    with pytest.raises(redis.ConnectionError):
        RedisCursors(rt.connection).since("hourly", T0)


def test_report_to_takes_any_address_the_inbox_takes(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(entry(report_to="email:ops@localhost"))
    [loaded] = load_schedules(path)
    assert loaded.report_to == "email:ops@localhost"


def test_seconds_go_last_and_the_next_ticks_show_what_an_expression_means() -> None:
    now = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
    every_30_seconds = schedule(cron="* * * * * */30")
    assert [tick.astimezone(UTC) for tick in every_30_seconds.next_ticks(now)] == [
        now + timedelta(seconds=30),
        now + timedelta(seconds=60),
        now + timedelta(seconds=90),
    ]


def test_outerloop_scheduler_check_prints_each_schedules_next_three_ticks(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(entry(cron="0 2 * * *", more='timezone = "Asia/Tokyo"\n'))
    lines = outerloop("scheduler", "--check", env={"OUTERLOOP_SCHEDULES": str(path)}).splitlines()
    assert lines[0] == "daily  '0 2 * * *' (Asia/Tokyo) -> agent notes"
    ticks = lines[1].removeprefix("  next: ").split(", ")
    assert len(ticks) == 3 and all(tick.endswith("T02:00:00+09:00") for tick in ticks)
