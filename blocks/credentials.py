"""The `GrokVideoCredentials` block: API key and connection settings of the Grok video API."""

from __future__ import annotations

from typing import Any

import httpx
from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, SecretStr, ValidationError, field_validator

from prefect_grok_video.client import AsyncGrokVideoClient, GrokVideoClient
from prefect_grok_video.errors import ConfigurationError
from prefect_grok_video.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    GrokVideoSettings,
    check_base_url,
    make_timeout,
)

__all__ = ["GrokVideoCredentials"]


class GrokVideoCredentials(CredentialsBlock):
    """Credentials and connection settings for the Grok (xAI) video extension API.

    Example:
        Load stored credentials and extend a clip:
        ```python
        from prefect_grok_video.blocks import GrokVideoCredentials

        credentials = GrokVideoCredentials.load("BLOCK_NAME")
        async with credentials.get_client() as client:
            request_id = await client.submit_extension(video="clip.mp4", prompt="the sun rises")
            job = await client.wait_for_video(request_id)
        ```
    """

    _block_type_name = "Grok Video Credentials"
    _block_type_slug = "grok-video-credentials"
    _logo_url = "https://github.com/xai-org.png?size=250"
    _documentation_url = "https://github.com/prefect-grok-video/prefect-grok-video#readme"

    api_key: SecretStr = Field(
        default=...,
        title="API key",
        description="API key of the Grok video API, sent as a bearer token.",
    )
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
        default=DEFAULT_TIMEOUT.connect,
        gt=0,
        title="Connect timeout (seconds)",
        description="Seconds allowed to open a connection to the API.",
    )
    read_timeout: float = Field(
        default=DEFAULT_TIMEOUT.read,
        gt=0,
        title="Read timeout (seconds)",
        description="Seconds allowed to wait for an answer from the API.",
    )
    write_timeout: float = Field(
        default=DEFAULT_TIMEOUT.write,
        gt=0,
        title="Write timeout (seconds)",
        description="Seconds allowed to send one chunk of a request (large uploads).",
    )

    @field_validator("api_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        return check_base_url(value)

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeouts as an `httpx.Timeout` (the pool waits as long as a connect)."""
        return make_timeout(self.connect_timeout, self.read_timeout, self.write_timeout)

    def _client_options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a client from this block, updated with `overrides`."""
        options: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "model": self.model,
            "timeout": self.timeout,
            "logger": self.logger,
        }
        options.update(overrides)
        return options

    def get_client(self, **overrides: Any) -> AsyncGrokVideoClient:
        """An `AsyncGrokVideoClient` from this block; `overrides` go to its constructor."""
        return AsyncGrokVideoClient(**self._client_options(overrides))

    def get_sync_client(self, **overrides: Any) -> GrokVideoClient:
        """A `GrokVideoClient` (sync) from this block; `overrides` go to its constructor."""
        return GrokVideoClient(**self._client_options(overrides))

    @classmethod
    def from_settings(cls, settings: GrokVideoSettings | None = None) -> GrokVideoCredentials:
        """A block from `GROK_VIDEO_*` environment variables (or `settings`), never saved."""
        if settings is None:
            try:
                settings = GrokVideoSettings()
            except ValidationError as exc:
                problems = "; ".join(
                    f"GROK_VIDEO_{'_'.join(map(str, error['loc'])).upper()}: {error['msg']}"
                    for error in exc.errors()
                )
                raise ConfigurationError(f"invalid environment setting: {problems}") from None
        if settings.api_key is None or not settings.api_key.get_secret_value().strip():
            raise ConfigurationError(
                "no API key: set GROK_VIDEO_API_KEY, or pass a GrokVideoCredentials block "
                '(GrokVideoCredentials.load("BLOCK_NAME"))'
            )
        return cls(
            api_key=settings.api_key,
            base_url=settings.base_url,
            model=settings.model,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            write_timeout=settings.write_timeout,
        )
