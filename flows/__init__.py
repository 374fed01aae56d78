"""Prefect tasks and flows of prefect-grok-video (installed as `prefect_grok_video.flows`)."""
