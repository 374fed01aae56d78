"""Prefect assets of a run: each downloaded video is an asset keyed by its output URI, with its
input clip or still (or, for a chained row, the upstream row's video) as its upstream asset, so
that the UI's asset graph shows which video came from which clip.

Asset keys are URIs (`file:///…`, `s3://…`, `https://…`) without the characters Prefect refuses
in them (spaces, `?`, `#`, `%`, quotes…), which are replaced by `_`; a URL's query (which may
hold a token) is left out. An input with no such URI (a data URL, a Files API id) has no
upstream asset.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.assets import Asset
from prefect.assets.core import AssetProperties
from pydantic import ValidationError

from prefect_grok_video.display import shown
from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.manifest import ValidRow
from prefect_grok_video.models import VideoJob
from prefect_grok_video.outputs import local_path

__all__ = ["asset_key", "input_asset_keys", "job_metadata", "row_metadata", "video_asset"]

#: Characters Prefect refuses in an asset key (prefect.types.names), and a few more.
_RESTRICTED = re.compile(r"[\s#?&%\"'<>\[\]{}|\\^`]")


def asset_key(location: str) -> str | None:
    """The asset key of a file, storage object or http(s) resource; None when it has none."""
    lowered = location.lower()
    if lowered.startswith(("http://", "https://")):
        key = location.split("?", 1)[0].split("#", 1)[0]
    elif is_storage_url(location):
        key = location
    elif lowered.startswith(("data:", "file_id:")):
        return None
    else:
        key = local_path(location).as_uri().replace("%20", " ")
    key = _RESTRICTED.sub("_", key)
    try:
        return Asset(key=key).key
    except ValidationError:
        return None


def input_asset_keys(row: ValidRow, upstream_output: str | None = None) -> list[str]:
    """The upstream assets of a row's video: its input clip and its still, or the output of
    the row its video comes from."""
    sources: list[str] = []
    if row.upstream is not None:
        if upstream_output:
            sources.append(upstream_output)
    elif row.video is not None and row.video.kind in ("file", "url"):
        sources.append(row.video.location or row.video.source)
    if row.image is not None and row.image.kind in ("file", "url"):
        sources.append(row.image.location or row.image.source)
    return [key for key in map(asset_key, sources) if key]


def video_asset(row: ValidRow, output: str) -> Asset | None:
    """The asset a row's downloaded video is, named after the row and described by its prompt."""
    key = asset_key(output)
    if key is None:
        return None
    description = f"{row.action} of row {row.row}: {shown(row.prompt, 300)}"
    return Asset(key=key, properties=AssetProperties(name=row.id, description=description))


def row_metadata(row: ValidRow) -> dict[str, Any]:
    """What an asset's page shows of a row: its action, model, the prompt's first characters
    and the length asked for (the finish task adds the job's and the file's)."""
    return {
        "action": row.action,
        "model": row.model,
        "prompt": shown(row.prompt, 80),
        "duration": row.duration,
    }


def job_metadata(job: VideoJob) -> dict[str, Any]:
    """What an asset's page shows of the job that made it: its id, length and cost."""
    return {
        "request_id": job.request_id,
        "video_seconds": job.video.duration if job.video else None,
        "cost_usd": job.cost_usd,
    }
