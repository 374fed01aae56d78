"""Configuration from the environment: every setting is `GROK_VIDEO_<NAME>`."""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "GrokVideoSettings",
    "check_base_url",
    "make_timeout",
]

DEFAULT_BASE_URL = "https://platform.dataeyes.ai/grok/v1"
DEFAULT_MODEL = "grok-imagine-video"
MiB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 512 * MiB
DEFAULT_MAX_DOWNLOAD_BYTES = 2048 * MiB
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=300.0, pool=10.0)
#: Rows in flight at once in a flow run. A run keeps the service's rate only while
#: rate x (job latency + download) rows fit: 1/s x 5-minute jobs is 300. Each waiting row is
#: a sleeping coroutine, so the bound is about memory, not the service (benchmarks/RESULTS.md).
DEFAULT_MAX_CONCURRENCY = 1000


def make_timeout(connect: float, read: float, write: float) -> httpx.Timeout:
    """An `httpx.Timeout` from the three settings; waiting for a pooled connection counts as
    connecting."""
    return httpx.Timeout(connect=connect, read=read, write=write, pool=connect)


def check_base_url(value: str) -> str:
    """`value` without a trailing slash, or `ValueError` unless it is an http(s) URL."""
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"base_url must be an http(s) URL, got {value!r}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


class GrokVideoSettings(BaseSettings):
    """Settings for the client and the CLI, read from `GROK_VIDEO_*` environment variables.

    >>> GrokVideoSettings(api_key="xai-...").base_url
    'https://platform.dataeyes.ai/grok/v1'
    """

    model_config = SettingsConfigDict(env_prefix="GROK_VIDEO_", extra="ignore")

    api_key: SecretStr | None = Field(
        default=None, description="API key sent as a bearer token (GROK_VIDEO_API_KEY)."
    )
    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        description="Base URL of the API; https://api.x.ai/v1 for xAI's own endpoint.",
    )
    model: str = Field(default=DEFAULT_MODEL, description="Model used when a row names none.")
    connect_timeout: float = Field(
        default=DEFAULT_TIMEOUT.connect, gt=0, description="Seconds to connect."
    )
    read_timeout: float = Field(
        default=DEFAULT_TIMEOUT.read, gt=0, description="Seconds to wait for an answer."
    )
    write_timeout: float = Field(
        default=DEFAULT_TIMEOUT.write,
        gt=0,
        description="Seconds to send one chunk of a request (large uploads).",
    )
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES,
        gt=0,
        description="Largest input video sent inline as a data URL.",
    )
    max_download_bytes: int = Field(
        default=DEFAULT_MAX_DOWNLOAD_BYTES,
        gt=0,
        description="Largest generated video accepted for download.",
    )

    poll_first: float = Field(
        default=5.0, ge=0, description="Seconds from submit to a job's first poll."
    )
    poll_min_interval: float = Field(
        default=1.0, gt=0, description="Shortest gap between two polls of a job, in seconds."
    )
    poll_max_interval: float = Field(
        default=30.0, gt=0, description="Longest gap between two polls of a job, in seconds."
    )

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts as an `httpx.Timeout`."""
        return make_timeout(self.connect_timeout, self.read_timeout, self.write_timeout)
