"""Procfile and fly.toml name processes the CLI really has."""

from __future__ import annotations

import tomllib

from bot.cli import main
from tests.services import REPO


def test_every_procfile_process_is_an_outerloop_command() -> None:
    lines = (REPO / "Procfile").read_text().splitlines()
    processes = dict(line.split(": ", 1) for line in lines if line.strip())
    assert set(processes) == {"web", "worker", "caller", "scheduler", "smtp"}
    for name, command in processes.items():
        assert command == f"outerloop {name}"
        assert name in main.commands


def test_fly_runs_the_same_processes_and_checks_health() -> None:
    fly = tomllib.loads((REPO / "fly.toml").read_text())
    procfile = dict(line.split(": ", 1) for line in (REPO / "Procfile").read_text().splitlines() if line)
    assert fly["processes"] == procfile
    assert (REPO / fly["build"]["dockerfile"]).exists()
    service = fly["http_service"]
    assert service["processes"] == ["web"]
    assert service["internal_port"] == int(fly["env"]["PORT"])
    assert service["checks"][0]["path"] == "/healthz"


def test_fly_takes_mail_on_port_25_for_the_inbox() -> None:
    fly = tomllib.loads((REPO / "fly.toml").read_text())
    (inbox,) = [service for service in fly["services"] if service["processes"] == ["smtp"]]
    assert inbox["internal_port"] == int(fly["env"]["SMTP_LISTEN_PORT"])
    assert [port["port"] for port in inbox["ports"]] == [25]
    assert fly["env"]["SMTP_LISTEN_HOST"] == "0.0.0.0"
