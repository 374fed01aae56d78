"""The demo's example manifest and clips, installed as `prefect_grok_video.examples` (data only)."""
