"""Service configuration: one pydantic-settings class, read from `TEXTCLF_*` environment variables.

Nothing is built at import time: `create_app()` calls `get_settings()` (or takes a `Settings` the
caller built), so tests and the CLI construct their own without touching the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
ScorerKind = Literal["process", "thread"]


class Settings(BaseSettings):
    """Everything the service reads from its environment (`TEXTCLF_MODEL_PATH`, ...)."""

    model_config = SettingsConfigDict(
        env_prefix="TEXTCLF_",
        extra="ignore",
        frozen=True,
        protected_namespaces=(),
        env_parse_none_str="none",  # TEXTCLF_TORCH_THREADS=none: torch's default
    )

    model_path: Path = Field(description="Model folder written by `textclf train`.")
    device: str = Field(default="cpu", description="Where inference runs: cpu, cuda, mps.")
    scorer: ScorerKind = Field(
        default="process",
        description="Where each worker runs the model: `process`, a child process of its own, so "
        "the model's work runs beside the event loop instead of taking turns with it under the "
        "GIL (measured with 8 connections on 2 cores: ~10,000 one-text requests/s, against "
        "~7,700 with `thread`); or `thread`, in the worker process itself (one process instead "
        "of two, so less memory).",
    )
    torch_threads: int | None = Field(
        default=1,
        ge=1,
        description="Intra-op threads torch uses per batch. 1 is fastest for the small batches a "
        "service sees (measured: a one-text forward takes ~20 us on 1 thread, and from 0.3 to "
        "over 10 ms with 2 threads on a busy 2-core host) and keeps several workers from "
        "oversubscribing the cores. None (`--torch-threads none`) keeps torch's default (one per "
        "core).",
    )
    max_texts: int = Field(default=256, ge=1, description="Most texts in one request.")
    max_text_chars: int = Field(default=100_000, ge=1, description="Longest text, in characters.")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="Largest request body.")
    max_batch_texts: int = Field(
        default=1024,
        ge=1,
        description="Most texts the micro-batcher joins into one predictor call; a single request "
        "larger than this still runs whole, alone.",
    )
    batch_wait_ms: float = Field(
        default=1.0,
        ge=0,
        description="`thread` scorer only. Under concurrent load, how long a batch may wait for "
        "as many requests as "
        "the previous batch had (0: never wait). A lone client never waits. Measured with 8 "
        "closed-loop connections: 0 ms gives batches of ~2 and ~2.5k req/s; 1 ms gives ~5.7k.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a request body may take to arrive, in all; a slower one gets 408, "
        "so a client that trickles its body (slowloris) cannot hold a connection for ever.",
    )
    ready_timeout_s: float = Field(
        default=5.0, gt=0, description="How long /readyz waits for a probe prediction."
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, /v1/* requires `Authorization: Bearer <key>`."
    )
    log_level: LogLevel = "info"
    access_log: bool = Field(
        default=False,
        description="Log every request. Off by default: /metrics already counts requests, and "
        "formatting a log line costs a noticeable share of a one-text request.",
    )
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's built-in OpenTelemetry instrumentation (a span and metrics per "
        "request, sent to the OpenTelemetry SDK you configure). Off by default: even with no SDK "
        "configured, its per-request check for one cost ~6 us of a ~90 us one-text request. "
        "Only FastAPI versions that have it (`FastAPI(telemetry=...)`) are affected.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS, as JSON: TEXTCLF_CORS_ORIGINS='[\"https://a.b\"]'. "
        "Empty (the default) leaves CORS off.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lowercase_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty key would "enable" auth that an empty header satisfies: refuse it outright.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty; unset TEXTCLF_API_KEY to turn authentication off")
        return value


def get_settings() -> Settings:
    """Settings from the environment; raises pydantic's ValidationError naming any bad variable."""
    return Settings()  # type: ignore[call-arg]  # model_path comes from the environment
