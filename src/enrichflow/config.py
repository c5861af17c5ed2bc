"""Settings from the environment (``ENRICHFLOW_*``) and an optional ``.env`` file."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///enrichflow.db"


class Settings(BaseSettings):
    """Process-wide settings; every field can be set as ``ENRICHFLOW_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="ENRICHFLOW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy or plain postgresql:// URL of the state store.",
    )
    public_url: str | None = Field(
        None,
        description="Base URL external services use to reach the callback receiver; unset, "
        "nothing is sent to Clay (it could not call back).",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key for signed callback tokens and session cookies (at least 32 bytes); "
        "unset: a random key generated once and kept in the database.",
    )
    workers: int = Field(8, ge=1, le=256, description="Local executor threads.")
    chunk_size: int = Field(500, ge=1, le=10_000, description="States claimed per dispatch.")
    poll_interval: float = Field(1.0, gt=0, description="Safety-net poll, seconds.")
    callback_max_bytes: int = Field(1024 * 1024, ge=1024, description="Largest callback body.")
    admin_password: SecretStr | None = Field(
        None, description="Dashboard login password; without it nobody can log in."
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token for /api/ calls (Authorization: Bearer ...)."
    )
    header_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds a client has to send a request's headers."
    )
    body_timeout: float = Field(
        120.0, gt=0, le=3600, description="Seconds a client has to send a request's body."
    )
    keep_alive_timeout: int = Field(
        5, ge=1, le=300, description="Seconds an idle keep-alive connection stays open."
    )
    max_connections: int = Field(
        1000, ge=1, le=100_000, description="Open connections above which requests get 503."
    )
    upload_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest CSV upload accepted by the dashboard."
    )
    executor: str = Field(
        "local", pattern="^(local|modal)$", description="Where chunks run: local or modal."
    )
    modal_app: str = Field(
        "data-enrichment-workers", min_length=1, description="Name of the deployed Modal app."
    )
    modal_max_containers: int = Field(
        10, ge=1, le=1000, description="Most Modal containers running chunks at once."
    )
    allow_private_targets: bool = Field(
        False,
        description="Let webhooks and http steps reach loopback, private and link-local hosts.",
    )
    plugins: str = Field(
        "",
        description="Comma-separated modules imported for their steps, besides the "
        "enrichflow.steps entry points of installed packages.",
    )
    sentry_dsn: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENTRY_DSN", "ENRICHFLOW_SENTRY_DSN", "sentry_dsn"),
        description="Sentry DSN (SENTRY_DSN, the SDK's own name); unset: nothing is reported.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
