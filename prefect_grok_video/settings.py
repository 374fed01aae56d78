"""Configuration: the options of a client, and `GrokVideoSettings`, which reads them from
`GROK_VIDEO_<NAME>` environment variables.

Settings are read once, where a program starts (the command line, a flow run, a block built
`from_settings`), and passed down explicitly: nothing below reads the environment on its own.
`ClientOptions` holds every option but the key; the settings and the `GrokVideoCredentials`
block both build on it, so an option added here reaches every client.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from prefect_grok_video.errors import ConfigurationError
from prefect_grok_video.policies import PollPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "ENV_PREFIX",
    "ClientOptions",
    "GrokVideoSettings",
    "check_base_url",
    "make_timeout",
    "read_env",
]

ENV_PREFIX = "GROK_VIDEO_"
DEFAULT_BASE_URL = "https://platform.dataeyes.ai/grok/v1"
DEFAULT_MODEL = "grok-imagine-video"
MiB = 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = 512 * MiB
DEFAULT_MAX_DOWNLOAD_BYTES = 2048 * MiB
#: Seconds to connect, read, write and wait for a pooled connection.
DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_WRITE_TIMEOUT = 10.0, 60.0, 300.0
DEFAULT_TIMEOUT = httpx.Timeout(
    connect=DEFAULT_CONNECT_TIMEOUT,
    read=DEFAULT_READ_TIMEOUT,
    write=DEFAULT_WRITE_TIMEOUT,
    pool=10.0,
)
_DEFAULT_POLL = PollPolicy()
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


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def read_env(settings: type[SettingsT]) -> SettingsT:
    """`settings` read from this process's `GROK_VIDEO_*` variables; `ConfigurationError`
    naming every bad variable (never its value, which may be a key)."""
    try:
        return settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid environment setting: {problems}") from None


class ClientOptions(BaseModel):
    """Every option of a client except its key: where it connects, how long it waits, how
    large a file it moves, and how it polls."""

    base_url: str = Field(
        default=DEFAULT_BASE_URL,
        title="Base URL",
        description="Base URL of the API (http or https); https://api.x.ai/v1 for xAI's own.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        min_length=1,
        title="Model",
        description="Video model used when a request names none.",
    )
    connect_timeout: float = Field(
        default=DEFAULT_CONNECT_TIMEOUT,
        gt=0,
        title="Connect timeout (seconds)",
        description="Seconds allowed to open a connection to the API.",
    )
    read_timeout: float = Field(
        default=DEFAULT_READ_TIMEOUT,
        gt=0,
        title="Read timeout (seconds)",
        description="Seconds allowed to wait for an answer from the API.",
    )
    write_timeout: float = Field(
        default=DEFAULT_WRITE_TIMEOUT,
        gt=0,
        title="Write timeout (seconds)",
        description="Seconds allowed to send one chunk of a request (large uploads).",
    )
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES,
        gt=0,
        title="Largest upload (bytes)",
        description="Largest input video or image sent inline as a data URL.",
    )
    max_download_bytes: int = Field(
        default=DEFAULT_MAX_DOWNLOAD_BYTES,
        gt=0,
        title="Largest download (bytes)",
        description="Largest generated video accepted for download.",
    )
    poll_first: float = Field(
        default=_DEFAULT_POLL.first_poll,
        ge=0,
        title="First poll (seconds)",
        description="Seconds from submit to a job's first poll.",
    )
    poll_min_interval: float = Field(
        default=_DEFAULT_POLL.min_interval,
        gt=0,
        title="Shortest poll interval (seconds)",
        description="Shortest gap between two polls of a job.",
    )
    poll_max_interval: float = Field(
        default=_DEFAULT_POLL.max_interval,
        gt=0,
        title="Longest poll interval (seconds)",
        description="Longest gap between two polls of a job (at least the shortest).",
    )

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts as an `httpx.Timeout` (the pool waits as long as a connect)."""
        return make_timeout(self.connect_timeout, self.read_timeout, self.write_timeout)

    @property
    def poll(self) -> PollPolicy:
        """The poll policy these options describe."""
        return PollPolicy(
            first_poll=self.poll_first,
            min_interval=self.poll_min_interval,
            max_interval=max(self.poll_max_interval, self.poll_min_interval),
        )

    def client_options(self) -> ClientOptions:
        """Just the client options (without a key or anything a subclass adds)."""
        return ClientOptions.model_validate(
            {name: getattr(self, name) for name in ClientOptions.model_fields}
        )

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments of `AsyncGrokVideoClient` for these options (all but the key)."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "timeout": self.timeout,
            "poll": self.poll,
            "max_upload_bytes": self.max_upload_bytes,
            "max_download_bytes": self.max_download_bytes,
        }


class GrokVideoSettings(ClientOptions, BaseSettings):
    """The client options and the key, read from `GROK_VIDEO_*` environment variables.

    >>> GrokVideoSettings(api_key="xai-...").base_url
    'https://platform.dataeyes.ai/grok/v1'
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    api_key: SecretStr | None = Field(
        default=None, description="API key sent as a bearer token (GROK_VIDEO_API_KEY)."
    )
    prices: dict[str, dict[str, float]] | None = Field(
        default=None,
        description="USD per second of video by model and resolution, over the estimates of "
        "prefect_grok_video.pricing (GROK_VIDEO_PRICES, as JSON).",
    )

    @classmethod
    def from_env(cls) -> GrokVideoSettings:
        """The settings of this process's environment; `ConfigurationError` naming every bad
        variable (never its value, which may be the key)."""
        return read_env(cls)

    def require_key(self) -> SecretStr:
        """The API key, or `ConfigurationError` saying how to give one."""
        if self.api_key is None or not self.api_key.get_secret_value().strip():
            raise ConfigurationError(
                f"no API key: set {ENV_PREFIX}API_KEY, or pass a GrokVideoCredentials block "
                '(GrokVideoCredentials.load("BLOCK_NAME"))'
            )
        return self.api_key
