"""The flows of one video: `generate_video`, `edit_video` and `extend_video`, each a one-row
manifest run by the same code as `make_videos` (`prefect_grok_video.flows.engine.run`).

A module of their own, imported on first use: building a flow's parameter schema costs
Prefect a tenth of a second, which a command that runs a manifest need not pay.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypedDict

from prefect import flow
from prefect.serializers import Serializer

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.flows.engine.dispatch import sync_callable
from prefect_grok_video.flows.engine.options import DEFAULT_OUTPUT, RunOptions
from prefect_grok_video.flows.engine.results import RESULT_SERIALIZER
from prefect_grok_video.flows.engine.run import final, run_manifest
from prefect_grok_video.flows.videos import Rate, Resubmits, WaitTimeout
from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.manifest import ManifestRow
from prefect_grok_video.manifest.rows import media_reference
from prefect_grok_video.models import DownloadResult
from prefect_grok_video.outputs import OutputFolder, local_path
from prefect_grok_video.report import ItemResult

__all__ = ["edit_video", "extend_video", "generate_video"]


class _ResultOptions(TypedDict):
    persist_result: bool
    result_serializer: Serializer[Any]


#: Every single-video flow keeps its result (its `ItemResult`) where another process can read it.
_RESULTS: _ResultOptions = {"persist_result": True, "result_serializer": RESULT_SERIALIZER}

#: A video or still as a flow takes it: a path or URL (text or `Path`), a video made earlier
#: (`ItemResult`, or `DownloadResult`), or the bytes (see `media_reference`).
Video = str | Path | bytes | ItemResult | DownloadResult


def _id_for(video: str, action: str, output: str) -> str:
    """A row id from a video's file name (`clips/sunrise.mp4` → `sunrise`), or `sunrise-edited`
    / `sunrise-extended` when the result would land on the input itself (a video made by an
    earlier call, in the same output folder)."""
    if video.lower().startswith("data:"):
        return "video"
    stem = os.path.splitext(video.split("?")[0].rstrip("/").rsplit("/", 1)[-1])[0]
    stem = re.sub(r"[^\w.-]+", "-", stem).strip(".-") or "video"
    folder = OutputFolder.parse(output)
    if not folder.remote and not is_storage_url(video):
        try:
            lands_on_input = folder.destination(f"{stem}.mp4") == str(local_path(video))
        except ValueError:
            lands_on_input = False
        if lands_on_input:
            return f"{stem}-{action}ed"
    return stem


def _id_for_prompt(prompt: str) -> str:
    """A row id from a prompt's first words (`A kite, over a beach!` → `a-kite-over-a-beach`)."""
    words = re.sub(r"[^\w]+", "-", prompt.lower()).strip("-")
    return words[:48].rstrip("-") or "video"


async def _one(row: ManifestRow, options: RunOptions, credentials: GrokVideoCredentials | None,
               fail_on_item_error: bool) -> ItemResult:  # fmt: skip
    """Run a one-row manifest: the flows of a single video."""
    report = await run_manifest([row], options, credentials)
    return final(report, fail_on_item_error, report.items[0])


def _single(output: str, submit_rate: float, wait_timeout: float, max_resubmits: int,
            refresh: bool) -> RunOptions:  # fmt: skip
    return RunOptions(output=output, max_concurrency=1, submit_rate=submit_rate,
                      wait_timeout=wait_timeout, max_resubmits=max_resubmits,
                      refresh=refresh)  # fmt: skip


@sync_callable
@flow(
    name="generate-video", description="Generate one video with Grok and download it.", **_RESULTS
)
async def generate_video(
    prompt: str,
    image: Video | None = None,
    duration: int | None = None,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    model: str | None = None,
    output: str = DEFAULT_OUTPUT,
    credentials: GrokVideoCredentials | None = None,
    id: str | None = None,
    submit_rate: Rate = 1.0,
    wait_timeout: WaitTimeout = 1800.0,
    max_resubmits: Resubmits = 2,
    refresh: bool = False,
    fail_on_item_error: bool = True,
) -> ItemResult:
    """Generate one video from a prompt (and a still) with Grok; download it to `output/<id>.mp4`.

    Returns its `ItemResult`; fails with a `RunFailedError` carrying it unless it succeeded
    (or `fail_on_item_error` is False).

    Args:
        prompt: What the video shows.
        image: A still to start from (image-to-video): a PNG or JPEG as a path, storage URL,
            http(s) URL or data URL, or its bytes.
        duration: Seconds of video, 1-15 (default 8).
        aspect_ratio: 1:1, 16:9, 9:16, 4:3, 3:4, 3:2 or 2:3 (default 16:9).
        resolution: 480p or 720p (1080p on newer models).
        model: The model; empty means the credentials' default.
        output: Folder or storage URL the video is written to.
        credentials: The Grok Video Credentials block to use; empty means GROK_VIDEO_* variables.
        id: Name of the output file (without .mp4); defaults to the prompt's first words.
        submit_rate: Most submissions per second, shared with every run on this Prefect server
            (the global concurrency limit grok-video-submit). The service allows 1.
        wait_timeout: Seconds to wait for the job before reporting it timed_out.
        max_resubmits: New submissions after service_unavailable or internal_error.
        refresh: Pay for a new generation even if this one was already submitted.
        fail_on_item_error: End the run Failed unless the video was made.
    """
    row = ManifestRow(
        id=id or _id_for_prompt(prompt), action="generate", image=media_reference(image),
        prompt=prompt,
        duration=duration, aspect_ratio=aspect_ratio, resolution=resolution, model=model,
    )  # fmt: skip
    options = _single(output, submit_rate, wait_timeout, max_resubmits, refresh)
    return await _one(row, options, credentials, fail_on_item_error)


@sync_callable
@flow(
    name="edit-video", description="Edit one video with Grok and download the result.", **_RESULTS
)
async def edit_video(
    video: Video,
    prompt: str,
    model: str | None = None,
    output: str = DEFAULT_OUTPUT,
    credentials: GrokVideoCredentials | None = None,
    id: str | None = None,
    submit_rate: Rate = 1.0,
    wait_timeout: WaitTimeout = 1800.0,
    max_resubmits: Resubmits = 2,
    refresh: bool = False,
    fail_on_item_error: bool = True,
) -> ItemResult:
    """Edit one video with Grok (the result is as long as the input) and download it to
    `output/<id>.mp4`.

    Returns its `ItemResult`; fails with a `RunFailedError` carrying it unless it succeeded
    (or `fail_on_item_error` is False).

    Args:
        video: A path, storage URL, http(s) URL or data URL of an MP4 of up to 8.7 s, or a
            video made earlier (its `ItemResult` or `DownloadResult`), or its bytes.
        prompt: What changes in the video.
        model: The model; empty means the credentials' default.
        output: Folder or storage URL the video is written to.
        credentials: The Grok Video Credentials block to use; empty means GROK_VIDEO_* variables.
        id: Name of the output file (without .mp4); defaults to the video's file name.
        submit_rate: Most submissions per second, shared with every run on this Prefect server
            (the global concurrency limit grok-video-submit). The service allows 1.
        wait_timeout: Seconds to wait for the job before reporting it timed_out.
        max_resubmits: New submissions after service_unavailable or internal_error.
        refresh: Pay for a new edit even if this one was already submitted.
        fail_on_item_error: End the run Failed unless the video was made.
    """
    source: str = media_reference(video)
    row = ManifestRow(id=id or _id_for(source, "edit", output), action="edit", video=source,
                      prompt=prompt, model=model)  # fmt: skip
    options = _single(output, submit_rate, wait_timeout, max_resubmits, refresh)
    return await _one(row, options, credentials, fail_on_item_error)


@sync_callable
@flow(
    name="extend-video",
    description="Extend one video with Grok and download the result.",
    **_RESULTS,
)
async def extend_video(
    video: Video,
    prompt: str,
    duration: int = 6,
    model: str | None = None,
    output: str = DEFAULT_OUTPUT,
    credentials: GrokVideoCredentials | None = None,
    id: str | None = None,
    submit_rate: Rate = 1.0,
    wait_timeout: WaitTimeout = 1800.0,
    max_resubmits: Resubmits = 2,
    refresh: bool = False,
    fail_on_item_error: bool = True,
) -> ItemResult:
    """Extend one video with Grok and download the result to `output/<id>.mp4`.

    Returns its `ItemResult`; fails with a `RunFailedError` carrying it unless it succeeded
    (or `fail_on_item_error` is False).

    Args:
        video: A path, storage URL, http(s) URL, data URL or `file_id:<id>` of an MP4 of 2-15 s,
            or a video made earlier (its `ItemResult` or `DownloadResult`), or its bytes.
        prompt: What happens next in the video.
        duration: Seconds of new video, 2-10.
        model: The model; empty means the credentials' default.
        output: Folder or storage URL the video is written to.
        credentials: The Grok Video Credentials block to use; empty means GROK_VIDEO_* variables.
        id: Name of the output file (without .mp4); defaults to the video's file name.
        submit_rate: Most submissions per second, shared with every run on this Prefect server
            (the global concurrency limit grok-video-submit). The service allows 1.
        wait_timeout: Seconds to wait for the job before reporting it timed_out.
        max_resubmits: New submissions after service_unavailable or internal_error.
        refresh: Pay for a new generation even if this video was already submitted.
        fail_on_item_error: End the run Failed unless the video was made.
    """
    source: str = media_reference(video)
    row = ManifestRow(id=id or _id_for(source, "extend", output), action="extend", video=source,
                      prompt=prompt, duration=duration, model=model)  # fmt: skip
    options = _single(output, submit_rate, wait_timeout, max_resubmits, refresh)
    return await _one(row, options, credentials, fail_on_item_error)
