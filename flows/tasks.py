"""Prefect tasks for one job's life: submit it (once), wait for it, download its video.

The submit tasks (`submit_generation`, `submit_edit`, `submit_extension`) are the only ones that
spend money. Each result is persisted under a key made of what defines the paid job (base URL,
operation, model, prompt, duration, aspect ratio, resolution, the content fingerprints of the
video and the still — or, for a video that is another row's result, that row's job — and which
resubmission this is) and never of the credentials, so a rerun in a new process, after a crash
or a flow retry, gets the same request_id back instead of paying again. Within a run that has a
spend cap (`flows.budget`), a submit task commits its `cost_estimate` right before it pays, and
fails with `BudgetExceededError` instead when that would pass the cap.

Longer than most modules (about 560 lines), on purpose: the six tasks users call, each with its
cache key and its options beside it, since what makes a cached result safe to reuse is read in
one place with the task that writes it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from functools import partial
from typing import Any, ParamSpec, cast

from prefect import State, Task, get_run_logger, task
from prefect.assets import Asset, add_asset_metadata, materialize
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.context import AssetContext, TaskRunContext
from prefect.runtime import flow_run
from prefect.tasks import TaskRunNameCallbackWithParameters
from prefect.transactions import get_transaction
from pydantic import BaseModel, Field

from prefect_grok_video.blocks import GrokVideoCredentials
from prefect_grok_video.client import AsyncGrokVideoClient
from prefect_grok_video.errors import GrokVideoError, SubmitOutcomeUnknownError
from prefect_grok_video.flows.engine.assets import job_metadata
from prefect_grok_video.flows.engine.budget import BudgetExceededError, run_budget
from prefect_grok_video.flows.engine.claims import (
    Claim,
    ClaimedElsewhere,
    HolderGoneError,
    SubmitClaims,
)
from prefect_grok_video.flows.engine.dispatch import SyncCallableTask, sync_callable
from prefect_grok_video.flows.engine.gate import SubmitGate
from prefect_grok_video.inputs import (
    ImageInput,
    MediaInput,
    VideoInput,
    resolve_image,
    resolve_video,
)
from prefect_grok_video.models import DownloadResult, VideoJob
from prefect_grok_video.operations import Action, JobRequest, limits_for
from prefect_grok_video.settings import GrokVideoSettings

__all__ = [
    "SUBMIT_TASKS",
    "Finished",
    "Submission",
    "download_video",
    "finish_video",
    "submit_edit",
    "submit_extension",
    "submit_generation",
    "wait_for_video",
]

P = ParamSpec("P")

#: The client of the flow run in progress (one connection pool, its submissions paced by the
#: run's `SubmitGate`), shared by its tasks. Tasks called on their own build their own.
shared_client: ContextVar[AsyncGrokVideoClient | None] = ContextVar(
    "grok_video_client", default=None
)


class Submission(BaseModel):
    """What a submit produced: a request_id, or why its outcome cannot be known."""

    request_id: str | None = Field(description="The job's id; None when the outcome is unknown.")
    submitted_at: datetime
    attempt: int = Field(default=0, description="0 for the first submission of a job, then 1…")
    unknown_reason: str | None = Field(
        default=None, description="Set when the request went out and no answer came back."
    )
    flow_run_id: str | None = Field(
        default=None,
        description="The flow run that sent it (and paid for the job), when it ran in one.",
    )


@asynccontextmanager
async def _client_for(
    credentials: GrokVideoCredentials | None,
) -> AsyncIterator[AsyncGrokVideoClient]:
    shared = shared_client.get()
    if shared is not None:
        yield shared
        return
    credentials = credentials or GrokVideoCredentials.from_settings()  # the environment, once
    # On its own, a task still keeps to the service's documented 1 submission per second.
    async with credentials.get_client(pace=SubmitGate(1.0, limit_name=None).admit) as client:
        yield client


def _row_label(parameters: dict[str, Any]) -> str:
    if parameters.get("row_id"):
        return str(parameters["row_id"])
    request_id = parameters.get("request_id")
    return request_id if isinstance(request_id, str) else "video"


def _run_name(step: str) -> TaskRunNameCallbackWithParameters:
    def name(parameters: dict[str, Any]) -> str:
        return f"{step}-{_row_label(parameters)}"

    # What Prefect calls with the parameters (its protocol's classmethod no function has).
    return cast(TaskRunNameCallbackWithParameters, name)


def _retry_if_retryable(task: Any, task_run: TaskRun, state: State) -> bool:
    """Retry a task only after an error that says trying again can help."""
    error = state.data
    return isinstance(error, GrokVideoError) and error.retryable


def _fingerprint(
    value: str | MediaInput | None, resolve: Callable[[str], MediaInput]
) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, MediaInput) else resolve(value)).fingerprint()


def _submission_key(action: Action) -> Callable[[TaskRunContext | None, dict[str, Any]], str]:
    """The cache key function of `action`'s submit task: what the paid job is made of, never
    who pays for it."""

    def key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str:
        credentials: GrokVideoCredentials | None = parameters.get("credentials")
        # A task called without a block takes its settings from the environment, as its body
        # will.
        options = credentials or GrokVideoSettings.from_env()
        model = parameters.get("model") or options.model
        duration = parameters.get("duration")
        if duration is None:
            duration = limits_for(action, model).default_duration
        video = parameters.get("fingerprint") or _fingerprint(
            parameters.get("video"), resolve_video
        )
        attempt = int(parameters.get("attempt", 0))
        if action == "extend":
            # As it has been since extensions were the only operation: reruns of manifests
            # submitted by earlier versions reuse their jobs.
            assert duration is not None  # an extension always has one
            payload = ["grok-video-submit/1", options.base_url, model, parameters["prompt"],
                       int(duration), video, attempt]  # fmt: skip
        else:
            image = parameters.get("image_fingerprint") or _fingerprint(
                parameters.get("image"), resolve_image
            )
            payload = ["grok-video-submit/2", options.base_url, action, model,
                       parameters["prompt"], duration, parameters.get("aspect_ratio"),
                       parameters.get("resolution"), video, image, attempt]  # fmt: skip
        return "grok-video-submit-" + hashlib.sha256(json.dumps(payload).encode()).hexdigest()

    return key


def job_key(row_id: str | None, attempt: int) -> str:
    """What a run's spend cap knows one submission of a row by."""
    return f"{row_id}#{attempt}"


#: The cache key of an extension (kept under its first name).
submission_key = _submission_key("extend")


def _submit_task(
    action: Action,
) -> Callable[[Callable[P, Coroutine[Any, Any, Submission]]], SyncCallableTask[P, Submission]]:
    """The decorator of `action`'s submit task: cached by what the job is, retried only when
    nothing can have been paid for, run named `<action>-<row id>`."""
    return lambda fn: sync_callable(task(
        name={"generate": "submit-generation", "edit": "submit-edit"}.get(
            action, "submit-extension"
        ),
        task_run_name=_run_name(action),
        cache_key_fn=_submission_key(action),
        persist_result=True,
        result_serializer="json",
        retries=2,
        retry_delay_seconds=[5, 30],
        retry_condition_fn=_retry_if_retryable,
    )(fn))  # fmt: skip


async def _submit(
    request: JobRequest,
    credentials: GrokVideoCredentials | None,
    *,
    row_id: str | None,
    attempt: int,
    preflight: bool,
    cost_estimate: float | None,
) -> Submission:
    """Submit `request` once, within the run's spend cap; an answer that never came is
    returned, not raised (see below)."""
    budget = run_budget.get()
    key = job_key(row_id, attempt)
    if (
        budget is not None
        and cost_estimate is not None
        and not await budget.reserve(key, cost_estimate)
    ):
        raise BudgetExceededError(
            f"not submitted: its estimated ${cost_estimate:.2f} would take the run past "
            f"its spend cap of ${budget.cap:.2f}; run again with a higher max_cost to "
            "submit it (what was done is not paid for again)",
            code="spend_cap",
            row_id=row_id,
        )
    run_id = str(flow_run.get_id()) if flow_run.get_id() else None
    async with _client_for(credentials) as client:
        claims = _claims(client, row_id, run_id)
        claim = partial(claims.take, overwrite=_overwriting()) if claims else None
        while True:
            try:
                request_id = await client.submit(request, preflight=preflight, before_send=claim)
                break
            except ClaimedElsewhere as elsewhere:
                assert claims is not None
                found = await _submitted_elsewhere(claims, elsewhere.claim, row_id, attempt)
                if found is not None:  # not paid here: the other run's spend counts it
                    if budget is not None:
                        await budget.release(key)
                    return found
                # the holder gave the job up unsent: it is this one's to submit
            except SubmitOutcomeUnknownError as exc:
                exc.row_id = row_id
                get_run_logger().error("%s", exc)
                return Submission(
                    request_id=None, submitted_at=datetime.now(timezone.utc), attempt=attempt,
                    unknown_reason=str(exc), flow_run_id=run_id,
                )  # fmt: skip
            except GrokVideoError as exc:  # refused before any job was made: nothing to pay for
                if claims is not None:
                    await claims.release()
                if budget is not None:
                    await budget.release(key)
                exc.row_id = row_id
                raise
            finally:
                if claims is not None:
                    claims.finish()
    media = request.media
    get_run_logger().info(
        "Row %s: submitted %s%s as request %s (submission %d)",
        row_id, request.action, f" of {media.describe()}" if media else "", request_id,
        attempt + 1,
    )  # fmt: skip
    # Taken once the service accepted the job, not before the pacing wait: the poll schedule
    # estimates the job's progress from it.
    now = datetime.now(timezone.utc)
    return Submission(request_id=request_id, submitted_at=now, attempt=attempt, flow_run_id=run_id)


def _claims(
    client: AsyncGrokVideoClient, row_id: str | None, run_id: str | None
) -> SubmitClaims | None:
    """The claims of the submit task running now, in its result store (None outside one)."""
    transaction = get_transaction()
    if transaction is None or transaction.key is None or transaction.store is None:
        return None
    timeout = client.timeout
    hold = sum(
        t if t is not None else 600.0 for t in (timeout.connect, timeout.write, timeout.read)
    )
    return SubmitClaims(transaction.store, transaction.key, row_id=row_id, flow_run_id=run_id,
                        hold_seconds=hold)  # fmt: skip


def _overwriting() -> bool:
    """Whether this task run replaces its cached result on purpose (`refresh`)."""
    transaction = get_transaction()
    return bool(transaction is not None and transaction.overwrite)


async def _submitted_elsewhere(
    claims: SubmitClaims, claim: Claim, row_id: str | None, attempt: int
) -> Submission | None:
    """The submission another process is making of this very job: its result once recorded;
    `unknown` if that process is gone without one; None if it gave the job up unsent."""
    logger = get_run_logger()
    logger.info("Row %s: already being submitted by %s; waiting for its answer", row_id,
                claim.describe())  # fmt: skip
    try:
        found = await claims.outcome_elsewhere(claim)
    except HolderGoneError as gone:
        reason = (
            f"an earlier submission of this job, by {gone.claim.describe()}, ended before its "
            "answer was recorded (its process died): a job may exist and be billed"
        )
        logger.error("Row %s: %s", row_id, reason)
        return Submission(request_id=None, submitted_at=gone.claim.sent_at, attempt=attempt,
                          unknown_reason=reason, flow_run_id=gone.claim.flow_run_id)  # fmt: skip
    if isinstance(found, Submission):
        return found
    return None


@_submit_task("generate")
async def submit_generation(
    prompt: str,
    image: str | ImageInput | None = None,
    duration: int | None = None,
    aspect_ratio: str | None = None,
    resolution: str | None = None,
    model: str | None = None,
    credentials: GrokVideoCredentials | None = None,
    *,
    row_id: str | None = None,
    attempt: int = 0,
    image_fingerprint: str | None = None,
    cost_estimate: float | None = None,
) -> Submission:
    """Submit one paid generation (from the prompt, and a still if `image` is given) and return
    its `Submission`; cached like `submit_extension`."""
    still = image if isinstance(image, ImageInput) or image is None else resolve_image(image)
    request = JobRequest(
        "generate", prompt, model or _model(credentials), image=still, duration=duration,
        aspect_ratio=aspect_ratio, resolution=resolution,
    )  # fmt: skip
    return await _submit(request, credentials, row_id=row_id, attempt=attempt,
                         preflight=not isinstance(image, ImageInput),
                         cost_estimate=cost_estimate)  # fmt: skip


@_submit_task("edit")
async def submit_edit(
    video: str | VideoInput,
    prompt: str,
    model: str | None = None,
    credentials: GrokVideoCredentials | None = None,
    *,
    row_id: str | None = None,
    attempt: int = 0,
    fingerprint: str | None = None,
    cost_estimate: float | None = None,
) -> Submission:
    """Submit one paid edit of `video` and return its `Submission`; cached like
    `submit_extension`."""
    clip = video if isinstance(video, VideoInput) else resolve_video(video, file_ids=False)
    request = JobRequest("edit", prompt, model or _model(credentials), video=clip)
    return await _submit(request, credentials, row_id=row_id, attempt=attempt,
                         preflight=not isinstance(video, VideoInput),
                         cost_estimate=cost_estimate)  # fmt: skip


@_submit_task("extend")
async def submit_extension(
    video: str | VideoInput,
    prompt: str,
    duration: int = 6,
    model: str | None = None,
    credentials: GrokVideoCredentials | None = None,
    *,
    row_id: str | None = None,
    attempt: int = 0,
    fingerprint: str | None = None,
    cost_estimate: float | None = None,
) -> Submission:
    """Submit one paid extension job and return its `Submission` (cached: see the module doc).

    A submit whose answer never came is returned with `unknown_reason` set, not raised, so that
    it is cached too and no later run pays for the row again without being told to
    (`refresh_cache=True`, or `refresh` on the flows).
    """
    clip = video if isinstance(video, VideoInput) else resolve_video(video)
    request = JobRequest(
        "extend", prompt, model or _model(credentials), video=clip, duration=duration
    )
    return await _submit(request, credentials, row_id=row_id, attempt=attempt,
                         preflight=not isinstance(video, VideoInput),
                         cost_estimate=cost_estimate)  # fmt: skip


#: The submit task of each action.
SUBMIT_TASKS: dict[Action, SyncCallableTask[..., Submission]] = {
    "generate": submit_generation, "edit": submit_edit, "extend": submit_extension,
}  # fmt: skip


def _model(credentials: GrokVideoCredentials | None) -> str:
    return (credentials or GrokVideoSettings.from_env()).model


@sync_callable
@task(name="wait-for-video", task_run_name=_run_name("wait"), cache_policy=NO_CACHE)
async def wait_for_video(
    request_id: str,
    credentials: GrokVideoCredentials | None = None,
    *,
    timeout: float = 1800.0,
    submitted_at: datetime | None = None,
    row_id: str | None = None,
) -> VideoJob:
    """Poll `request_id` until it is done, failed or expired; never cached while pending.

    Raises `PollTimeoutError` after `timeout` seconds (waiting again later is free).
    """
    async with _client_for(credentials) as client:
        return await _wait(client, request_id, timeout, submitted_at, row_id)


async def _wait(
    client: AsyncGrokVideoClient,
    request_id: str,
    timeout: float,
    submitted_at: datetime | None,
    row_id: str | None,
) -> VideoJob:
    """Poll until the job ends, the schedule's clock set to when it was submitted."""
    started = None
    if submitted_at is not None:
        age = (datetime.now(timezone.utc) - submitted_at).total_seconds()
        started = time.monotonic() - max(0.0, age)
    try:
        return await client.wait_for_video(request_id, timeout=timeout, submitted_at=started)
    except GrokVideoError as exc:
        exc.row_id = row_id
        raise


def download_key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str:
    """One download per job and destination."""
    payload = json.dumps(["grok-video-download/1", parameters.get("request_id") or
                          parameters["url"], str(parameters["destination"])])  # fmt: skip
    return "grok-video-download-" + hashlib.sha256(payload.encode()).hexdigest()


#: The options of `download_video`, also given to the per-row materializing copies of it.
_DOWNLOAD_OPTIONS: dict[str, Any] = {
    "name": "download-video",
    "task_run_name": _run_name("download"),
    "cache_key_fn": download_key,
    "persist_result": True,
    "result_serializer": "json",
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": _retry_if_retryable,
}


@sync_callable
@task(**_DOWNLOAD_OPTIONS)
async def download_video(
    url: str,
    destination: str,
    credentials: GrokVideoCredentials | None = None,
    *,
    request_id: str | None = None,
    row_id: str | None = None,
    asset_metadata: dict[str, Any] | None = None,
) -> DownloadResult:
    """Download a result to `destination` (a path or fsspec URL), atomically; cached per job.

    The flows check that a cached download's file is still there, whole, before trusting it.
    Run as a materializing task (`materializing_download`), the file's asset gets
    `asset_metadata` and the file's size and sha256.
    """
    async with _client_for(credentials) as client:
        return await _download(client, url, destination, request_id, row_id, asset_metadata)


async def _download(
    client: AsyncGrokVideoClient,
    url: str,
    destination: str,
    request_id: str | None,
    row_id: str | None,
    asset_metadata: dict[str, Any] | None,
) -> DownloadResult:
    """Download, and give the task's assets (if it materializes one) the file's metadata."""
    try:
        result = await client.download(url, destination)
    except GrokVideoError as exc:
        exc.row_id, exc.request_id = row_id, request_id
        raise
    context = AssetContext.get()
    if context is not None and context.downstream_assets:
        for asset in context.downstream_assets:
            add_asset_metadata(
                asset, {**(asset_metadata or {}), "sha256": result.sha256, "size": result.size}
            )
    return result


class Finished(BaseModel):
    """How a job ended, and its video once downloaded (None unless it made one)."""

    job: VideoJob
    download: DownloadResult | None = None


def finish_key(context: TaskRunContext | None, parameters: dict[str, Any]) -> str:
    """One finish per job and destination: a rerun finds a job's end and file known."""
    payload = json.dumps(["grok-video-finish/1", parameters["request_id"],
                          str(parameters["destination"])])  # fmt: skip
    return "grok-video-finish-" + hashlib.sha256(payload.encode()).hexdigest()


#: The options of `finish_video`, also given to the per-row materializing copies of it.
_FINISH_OPTIONS: dict[str, Any] = {
    **_DOWNLOAD_OPTIONS,
    "name": "finish-video",
    "task_run_name": _run_name("finish"),
    "cache_key_fn": finish_key,
}


@sync_callable
@task(**_FINISH_OPTIONS)
async def finish_video(
    request_id: str,
    destination: str,
    credentials: GrokVideoCredentials | None = None,
    *,
    timeout: float = 1800.0,
    submitted_at: datetime | None = None,
    row_id: str | None = None,
    asset_metadata: dict[str, Any] | None = None,
    on_ended: Callable[[VideoJob], None] | None = None,
) -> Finished:
    """Wait for a job to end and download its video if it made one, in one task run (a run's
    rows each take two: this and their submit). `on_ended` hears of the job's end before the
    download (rows chained to this one need not wait for it). Cached per job and destination,
    like `download_video`: the flows check that a cached file is still whole before trusting
    it. Raises `PollTimeoutError` after `timeout` seconds (waiting again later is free).
    """
    async with _client_for(credentials) as client:
        job = await _wait(client, request_id, timeout, submitted_at, row_id)
        if on_ended is not None:
            on_ended(job)
        if job.outcome != "succeeded":
            context = AssetContext.get()
            if context is not None:  # no video was made: there is no asset to record
                context.downstream_assets.clear()
            return Finished(job=job)
        assert job.video is not None
        metadata = {**(asset_metadata or {}), **job_metadata(job)}
        download = await _download(client, job.video.url, destination, request_id, row_id, metadata)
    return Finished(job=job, download=download)


def materializing_finish(
    asset: Asset, upstream: Sequence[str]
) -> Task[..., Coroutine[Any, Any, Finished]]:
    """`finish_video` as a task that materializes `asset` from the `upstream` assets, for one
    row: the UI's asset graph then links the video to its input."""
    return materialize(asset, asset_deps=list(upstream), **_FINISH_OPTIONS)(finish_video.fn)
