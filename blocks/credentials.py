"""The `GrokVideoCredentials` block: API key and every client option of the Grok video API."""

from __future__ import annotations

from typing import Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import BaseModel, Field, HttpUrl, SecretStr, field_validator

from prefect_grok_video.client import AsyncGrokVideoClient
from prefect_grok_video.settings import ClientOptions, GrokVideoSettings
from prefect_grok_video.sync_client import GrokVideoClient

__all__ = ["GrokVideoCredentials"]


class _ApiKey(BaseModel):
    """The key, in a base of its own so that the block's form asks for it first."""

    api_key: SecretStr = Field(
        default=...,
        title="API key",
        description="API key of the Grok video API, sent as a bearer token.",
    )

    @field_validator("api_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        return value


class GrokVideoCredentials(CredentialsBlock, ClientOptions, _ApiKey):
    """Credentials and connection settings for the Grok (xAI) video API.

    Every option of `GrokVideoSettings` is a field here too (`ClientOptions`): the timeouts,
    the upload and download limits and the poll policy reach every client the block makes.

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
    _logo_url = HttpUrl("https://github.com/xai-org.png?size=250")
    _documentation_url = HttpUrl("https://github.com/prefect-grok-video/prefect-grok-video#readme")

    def _client_arguments(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a client from this block, updated with `overrides`."""
        arguments = {"api_key": self.api_key, "logger": self.logger, **self.client_arguments()}
        return {**arguments, **overrides}

    def get_client(self, **overrides: Any) -> AsyncGrokVideoClient:
        """An `AsyncGrokVideoClient` from this block; `overrides` go to its constructor."""
        return AsyncGrokVideoClient(**self._client_arguments(overrides))

    def get_sync_client(self, **overrides: Any) -> GrokVideoClient:
        """A `GrokVideoClient` (sync) from this block; `overrides` go to its constructor."""
        return GrokVideoClient(**self._client_arguments(overrides))

    @classmethod
    def from_settings(cls, settings: GrokVideoSettings | None = None) -> GrokVideoCredentials:
        """A block (never saved) with every field of `settings` (default: read from the
        `GROK_VIDEO_*` variables, once); `ConfigurationError` without a key."""
        settings = settings or GrokVideoSettings.from_env()
        return cls(api_key=settings.require_key(), **settings.client_options().model_dump())
