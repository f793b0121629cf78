"""Configuration from the environment (12-factor config), validated by pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

STATE_DIR = Path(".outerloop")
"""Local state of ``outerloop dev``: the private Redis's data and the URL it listens on."""
DEV_REDIS_URL_FILE = STATE_DIR / "redis-url"
DEFAULT_EMAIL_AGENT = "deploy"
"""The agent that mail to an inbox address without ``=agent`` goes to."""


class MissingSetting(RuntimeError):
    """A required setting is absent; the message says which variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    redis_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    outerloop_model: str = "claude-sonnet-5-5"
    agents: str = Field(default="bot.agents:bundled_agents", alias="OUTERLOOP_AGENTS")
    """``module:function`` returning the ``Registry`` of agents this deployment runs."""
    agents_dir: Path = Field(default=Path("agents"), alias="OUTERLOOP_AGENTS_DIR")
    """A folder of agents in files, one subfolder each (``agent.toml``, ``prompt.md``), added to
    those of ``OUTERLOOP_AGENTS``; ignored when it does not exist."""
    api_token: str | None = Field(default=None, alias="OUTERLOOP_API_TOKEN")
    api_trusted_responder: bool = Field(default=False, alias="OUTERLOOP_API_TRUSTED_RESPONDER")
    """Let the shared API token name who answers or acts (for an integration that authenticates
    its people itself); off, it acts as ``api`` and only person tokens act as people."""
    approvers: Annotated[tuple[str, ...], NoDecode] = Field(default=(), alias="OUTERLOOP_APPROVERS")
    tool_approvers: dict[str, tuple[str, ...]] = Field(default_factory=dict, alias="OUTERLOOP_TOOL_APPROVERS")
    """Approvers per tool name, as JSON (``{"deploy": ["S123", "U456"]}``); overrides the agent's."""
    deploy_repo: Path | None = Field(default=None, alias="OUTERLOOP_DEPLOY_REPO")
    """Unset: the current directory (``outerloop dev`` makes a demo repository instead)."""
    deploy_command: str = Field(
        default="echo deploying {tag} to {environment}", alias="OUTERLOOP_DEPLOY_COMMAND"
    )
    host: str = Field(default="127.0.0.1", alias="OUTERLOOP_HOST")
    port: int = Field(default=8000, alias="PORT")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, alias="OUTERLOOP_MAX_BODY_BYTES")
    """Bytes an HTTP request body may have (webhooks keep their own limit); larger ones get 413."""
    job_timeout: int = Field(default=900, alias="OUTERLOOP_JOB_TIMEOUT")
    """Seconds one advance job may run (a deploy command can be slow)."""
    lock_ttl: float = Field(default=30.0, alias="OUTERLOOP_LOCK_TTL")
    """Seconds a dead worker's thread lock outlives it before the thread is picked up again."""
    sweep_interval: float = Field(default=5.0, alias="OUTERLOOP_SWEEP_INTERVAL")
    """Seconds between the scheduler's sweeps for threads whose worker died."""
    delivery_grace: float = Field(default=60.0, gt=0, alias="OUTERLOOP_DELIVERY_GRACE")
    """Seconds a delivery may stay owed before the sweeps take its job for lost and queue it again."""
    retention_days: float | None = Field(default=None, gt=0, alias="OUTERLOOP_RETENTION_DAYS")
    """Days an ended (done, failed, cancelled) thread is kept; unset: kept for good."""
    model_concurrency: int = Field(default=100, gt=0, alias="OUTERLOOP_MODEL_CONCURRENCY")
    """Model calls one caller process keeps in flight per model."""
    agent_concurrency: int = Field(default=100, gt=0, alias="OUTERLOOP_AGENT_CONCURRENCY")
    """Model calls one caller process keeps in flight per agent."""
    caller_capacity: int = Field(default=500, gt=0, alias="OUTERLOOP_CALLER_CAPACITY")
    """Model requests one caller process holds at once (in flight or waiting for a limit)."""
    model_rpm: float | None = Field(default=None, gt=0, alias="OUTERLOOP_MODEL_RPM")
    """Model calls a minute for the API key, all caller processes together; unset: no limit."""
    model_retries: int = Field(default=5, ge=0, alias="OUTERLOOP_MODEL_RETRIES")
    """Tries after a 429, 529, 5xx or lost connection before the call counts as a model error."""
    log_format: str = Field(default="console", alias="OUTERLOOP_LOG_FORMAT")
    metrics_token: str | None = Field(default=None, alias="OUTERLOOP_METRICS_TOKEN")
    """A bearer token that reads ``GET /metrics`` and nothing else (for Prometheus); API
    credentials read it too."""
    metrics_port: int | None = Field(default=None, gt=0, alias="OUTERLOOP_METRICS_PORT")
    """Where ``outerloop worker``, ``caller``, ``scheduler`` and ``smtp`` serve their host's
    process metrics (``bot.metrics.exporter``); unset: they serve none."""
    metrics_host: str = Field(default="127.0.0.1", alias="OUTERLOOP_METRICS_HOST")
    prices_file: Path | None = Field(default=None, alias="OUTERLOOP_PRICES")
    """A TOML file of model prices (``[models.NAME]``) that replace the defaults model by model."""
    request_ttl: float | None = Field(default=None, gt=0, alias="OUTERLOOP_REQUEST_TTL")
    """Seconds the bundled agents' human requests wait before a reminder, an escalation or a
    time-out; unset: they wait until answered."""
    request_reminders: int = Field(default=0, ge=0, alias="OUTERLOOP_REQUEST_REMINDERS")
    escalation_approvers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), alias="OUTERLOOP_ESCALATION_APPROVERS"
    )
    """Who an unanswered request moves to after the reminders (comma-separated)."""
    schedules_file: Path | None = Field(default=None, alias="OUTERLOOP_SCHEDULES")
    """A TOML file of cron schedules that launch threads (``outerloop scheduler`` runs them)."""
    webhooks_file: Path | None = Field(default=None, alias="OUTERLOOP_WEBHOOKS")
    """A TOML file of webhooks, served at ``POST /webhooks/{name}``."""
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    """An app-level token (``xapp-...``): receive Slack events over Socket Mode instead of HTTP."""
    slack_api_url: str = "https://slack.com/api/"
    slack_agent: str = Field(default="deploy", alias="OUTERLOOP_SLACK_AGENT")
    """The agent that handles conversations started in Slack, in channels not mapped below."""
    slack_channels: dict[str, str] = Field(default_factory=dict, alias="OUTERLOOP_SLACK_CHANNELS")
    """The agent per Slack channel id, as JSON (``{"C0123ABCD": "deploy"}``)."""

    slack_client_id: str | None = None
    """With ``SLACK_CLIENT_SECRET``: the console's "Sign in with Slack" (OpenID Connect)."""
    slack_client_secret: str | None = None
    slack_openid_url: str = "https://slack.com"
    """Slack's OpenID issuer, whose authorize, token and key endpoints the console uses."""
    slack_team_id: str | None = None
    """If set, only members of this Slack workspace may sign in to the console with Slack."""

    # The web console (``bot.console``); see the README's "Web console" section.
    console_url: str | None = Field(default=None, alias="OUTERLOOP_CONSOLE_URL")
    """The console's public base URL, for sign-in links and Slack's redirect; unset:
    ``http://OUTERLOOP_HOST:PORT``. An ``https`` URL makes the session cookie ``Secure``."""
    console_secret: str | None = Field(default=None, alias="OUTERLOOP_CONSOLE_SECRET")
    """Signs session cookies; unset, one random secret is kept in Redis for every web process."""
    console_visibility: Literal["all", "involved"] = Field(
        default="all", alias="OUTERLOOP_CONSOLE_VISIBILITY"
    )
    """Which threads a signed-in person sees: all of them, or those they started, were asked
    in or answered. Answering always follows a request's approvers."""
    console_emails: Annotated[tuple[str, ...], NoDecode] = Field(default=(), alias="OUTERLOOP_CONSOLE_EMAILS")
    """Addresses and domains that may get a sign-in link by mail, besides every approver's address."""

    # The email inbox (``outerloop smtp``) and outbound mail; see the README's "Email" section.
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int = 2525
    smtp_recipients: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: {"outerloop@localhost": DEFAULT_EMAIL_AGENT}
    )
    """``address[=agent],...``: the addresses the inbox takes mail for, each with its agent."""
    smtp_allowed_senders: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses and domains that may mail the inbox; empty refuses everyone."""
    smtp_data_size_limit: int = 10 * 1024 * 1024
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    smtp_require_tls: bool = False
    smtp_listen_username: str | None = None
    smtp_listen_password: str | None = None
    smtp_host: str | None = None
    """The relay outbound mail goes through; unset, no mail is sent."""
    smtp_maildir: Path | None = None
    """Without ``SMTP_HOST``: a maildir that outbound mail is written to instead of sent
    (``outerloop dev`` uses ``.outerloop/mail``), to read and answer it locally."""
    smtp_port: int = 587
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    """The From: of outbound mail; unset, the first of ``smtp_recipients``."""

    @field_validator("smtp_recipients", mode="before")
    @classmethod
    def _recipients(cls, value: object) -> object:
        if isinstance(value, str):
            entries = (part.strip().partition("=") for part in value.split(",") if part.strip())
            return {
                address.strip().lower(): agent.strip() or DEFAULT_EMAIL_AGENT for address, _, agent in entries
            }
        return value

    @field_validator(
        "approvers", "escalation_approvers", "smtp_allowed_senders", "console_emails", mode="before"
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def email_sender(self) -> str:
        """The From: of outbound mail."""
        return self.smtp_from or next(iter(self.smtp_recipients), "outerloop@localhost")

    @property
    def console_base(self) -> str:
        """The console's public base URL, without a trailing slash."""
        return (self.console_url or f"http://{self.host}:{self.port}").rstrip("/")

    def require_redis_url(self) -> str:
        """``REDIS_URL``, else the private Redis of an ``outerloop dev`` running here."""
        if self.redis_url:
            return self.redis_url
        if DEV_REDIS_URL_FILE.exists():
            return DEV_REDIS_URL_FILE.read_text().strip()
        raise MissingSetting("REDIS_URL is not set and no `outerloop dev` is running in this directory")
