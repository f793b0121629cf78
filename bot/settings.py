"""Configuration from the environment (12-factor config), validated by pydantic-settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    redis_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    outerloop_model: str = "claude-sonnet-5-5"
    outerloop_api_token: str | None = None
    approvers: Annotated[tuple[str, ...], NoDecode] = Field(default=(), alias="OUTERLOOP_APPROVERS")
    deploy_repo: Path = Field(default=Path("."), alias="OUTERLOOP_DEPLOY_REPO")
    deploy_command: str = Field(
        default="echo deploying {tag} to {environment}", alias="OUTERLOOP_DEPLOY_COMMAND"
    )

    @field_validator("approvers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
