"""Prefect blocks of prefect-grok-video (installed as `prefect_grok_video.blocks`)."""
