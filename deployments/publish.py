"""An example downstream of `make_videos`: a flow that takes one finished video.

The `publish-video` deployment in `prefect.yaml` runs it, through its trigger, for every
`grok-video.video.succeeded` event, with the video's path or URL, its row's id and its
request_id. Replace the body with your own publishing, or give the trigger to your own
deployment (docs/guides/automations.md).
"""

from __future__ import annotations

from prefect import flow, get_run_logger


@flow(name="publish-video")
def publish_video(video: str, row_id: str = "", request_id: str = "") -> str:
    """Log the video a grok-video run made (where a real downstream would publish it)."""
    get_run_logger().info("Publishing %s (row %s, request %s)", video, row_id, request_id)
    return video
