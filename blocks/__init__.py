"""Prefect blocks of prefect-grok-video (installed as `prefect_grok_video.blocks`)."""

from prefect_grok_video.blocks.credentials import GrokVideoCredentials

__all__ = ["GrokVideoCredentials"]
