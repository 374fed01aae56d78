"""The run's report and gallery page, written beside its videos when the run ends."""

from __future__ import annotations

import anyio

from prefect_grok_video.gallery import write_gallery
from prefect_grok_video.logs import Logger
from prefect_grok_video.report import RunReport

__all__ = ["publish_gallery"]


async def publish_gallery(report: RunReport, logger: Logger) -> str | None:
    """Write `<output>/report.json` and `<output>/index.html` for `report`; a failure is a
    warning, never the run's."""
    if not report.output:  # no row got as far as a file (a chunked run that lost them all)
        return None
    try:
        where = await anyio.to_thread.run_sync(write_gallery, report)
    except Exception as exc:  # a read-only folder, a bucket refusing the file
        logger.warning("Could not write the gallery page in %s: %s", report.output, exc)
        return None
    logger.info("Gallery of the videos: %s", where)
    return where
