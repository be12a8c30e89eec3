"""The one settings class: environment variables prefixed ``RECOVERLY_`` with embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _otel(*names: str) -> AliasChoices:
    """An OpenTelemetry variable keeps its standard name (no ``RECOVERLY_`` prefix)."""
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECOVERLY_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Path(".recoverly")
    database_url: str = ""
    storage_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    production: bool = False
    introspection: bool = False  # in production; always on in development
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    demo_token: str | None = None
    demo_other_token: str | None = None

    job_runner: str = "embedded"
    job_concurrency: int = 2
    job_poll_seconds: float = 0.5
    job_stale_seconds: float = 30.0
    # Scale-out (job_runner "queue"): procrastinate workers on PostgreSQL; job_stale_seconds
    # is how long a worker may miss heartbeats before its jobs are queued again.
    event_bus: str = "auto"  # "memory" or "postgres"; auto: postgres with the queue runner
    queue_heartbeat_seconds: float = 10.0
    queue_stalled_check_seconds: int = 10
    worker_shutdown_seconds: float = 20.0
    worker_heartbeat_file: Path | None = None
    backup_max_attempts: int = 3
    retry_backoff_seconds: float = 2.0
    scheduler_interval_seconds: float = 30.0
    internal_retention_days: int = 14
    # Live internal copies whose blob each scheduler tick checks (the next ones by ID, from
    # the first again after the last): at most this much storage work per tick, however
    # many copies there are.
    copy_check_batch: int = Field(default=2000, ge=1)

    archive_max_expansion_bytes: int = Field(default=20 * 1024**3)
    restore_chunk_size: int = 5000

    auth_cache_seconds: float = 5.0
    max_query_depth: int = 12
    max_query_tokens: int = 4000
    allow_private_endpoints: bool = False
    secret_keys: SecretStr | None = None  # "kid:base64key,..."; default: a key file in data_dir
    max_query_cost: int = 10_000
    max_query_aliases: int = 30
    max_query_fields: int = 1000
    rate_limit_points: int = 100_000
    rate_limit_window_seconds: float = 60.0
    max_request_bytes: int = 1024 * 1024
    max_variables_bytes: int = 256 * 1024
    max_json_depth: int = 32
    max_websocket_message_bytes: int = 1024 * 1024
    document_cache_size: int = 1000  # parsed and validated documents kept (LRU)
    persisted_queries_file: Path | None = None  # registered documents (JSON)
    persisted_queries_only: bool = False  # run registered documents only

    # Observability: logs, Prometheus metrics, readiness; traces follow the standard OTEL_*
    # variables (off unless an exporter or an OTLP endpoint is named).
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: json in production
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_enabled: bool = True
    metrics_port: int | None = None  # serve /metrics (and probes) on this port instead
    metrics_token: str | None = None  # when set, /metrics wants "Authorization: Bearer <it>"
    readiness_timeout_seconds: float = 3.0
    otel_sdk_disabled: bool = Field(default=False, validation_alias=_otel("OTEL_SDK_DISABLED"))
    otel_traces_exporter: str | None = Field(
        default=None, validation_alias=_otel("OTEL_TRACES_EXPORTER")
    )
    otel_service_name: str | None = Field(default=None, validation_alias=_otel("OTEL_SERVICE_NAME"))
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=_otel("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    )

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL: plain ``sqlite://`` and ``postgresql://`` URLs get a driver."""
        url = self.database_url or f"sqlite:///{self.data_dir / 'recoverly.db'}"
        return async_database_url(url)

    def check(self) -> None:
        """The settings' own consistency, before anything is imported or connected to: a
        ValueError names the first problem."""
        if self.job_runner not in JOB_RUNNERS:
            raise ValueError(f"RECOVERLY_JOB_RUNNER must be one of {', '.join(JOB_RUNNERS)}")
        if self.event_bus not in EVENT_BUSES:
            raise ValueError(f"RECOVERLY_EVENT_BUS must be one of {', '.join(EVENT_BUSES)}")
        self.resolved_database_url()

    def resolved_storage_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "storage"

    def resolved_log_format(self) -> str:
        if self.log_format == "auto":
            return "json" if self.production else "console"
        return self.log_format

    def traces_exporter(self) -> str | None:
        """The span exporter the OTEL_* variables ask for (``otlp``, ``console``), or None."""
        if self.otel_sdk_disabled:
            return None
        exporter = (self.otel_traces_exporter or "").strip().lower()
        if exporter == "none" or (not exporter and not self.otel_exporter_otlp_endpoint):
            return None
        return exporter or "otlp"

    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` as a list, without trailing slashes (browsers send none)."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]


JOB_RUNNERS = ("embedded", "queue")
EVENT_BUSES = ("auto", "memory", "postgres")


def async_database_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if base in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database {base!r}: use sqlite:// or postgresql://")


@lru_cache
def get_settings() -> Settings:
    return Settings()
