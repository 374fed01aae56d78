"""Scaling a manifest out: one flow run per chunk of rows, on any worker of the pool.

When `make_videos` runs from a deployment with `chunk_size` and the manifest has more rows,
the run (the parent) starts one flow run of the same deployment per chunk, with the same
parameters plus `rows="<first>-<last>"` (rows joined by `video: @<id>` always go to the same
chunk, which may then list them as `"1-9,14"`), and waits for them. Each chunk validates and
runs its rows exactly as a whole run would: row ids and numbers come from the whole manifest,
request_ids are cached in the shared result storage, and every chunk passes the same global
concurrency limit, so the submit rate holds across all of them. The parent then merges the
chunks' reports into one `RunReport` and publishes one set of artifacts.

The parent watches each chunk run itself (flows/engine/supervision.py): one that crashed, failed, or
is stuck (Pending with its worker gone, Running without heartbeats) is cancelled and run again,
up to `GROK_VIDEO_CHUNK_RETRIES` times, for free, since its paid jobs are cached; only then are
its rows reported lost, with what to do. The parent rides out a Prefect API that goes away.

Chunk runs are created with an idempotency key made of the parent's id, the row range and the
attempt, so a retried parent waits for the chunks it already started instead of starting them
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar
from uuid import UUID

import anyio
from prefect import State, get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments import arun_deployment
from prefect.exceptions import ObjectNotFound
from prefect.runtime import deployment, flow_run
from prefect.states import Cancelled

from prefect_grok_video.display import shown
from prefect_grok_video.flows.engine.artifacts import (
    MAX_VIDEO_ARTIFACTS,
    Background,
    ContactSheet,
    ProgressArtifact,
    publish_report,
    publish_video,
)
from prefect_grok_video.flows.engine.budget import SharedBudget, budget_limit_name
from prefect_grok_video.flows.engine.events import emit_run_event
from prefect_grok_video.flows.engine.gallery import publish_gallery
from prefect_grok_video.flows.engine.outage import ApiOutage, is_out_of_reach
from prefect_grok_video.flows.engine.supervision import SupervisionSettings, watch_chunk_run
from prefect_grok_video.manifest import read_rows
from prefect_grok_video.manifest.rows import UPSTREAM_PREFIX
from prefect_grok_video.posters import Poster, PosterError, read_poster
from prefect_grok_video.report import ItemError, ItemResult, RunReport

__all__ = [
    "ROWS_PATTERN",
    "ChunkPlan",
    "chunk_rows",
    "format_rows",
    "parse_rows",
    "plan_chunks",
    "run_in_chunks",
]

#: Seconds between attempts to reach an absent Prefect API.
CHUNK_POLL_SECONDS = 2.0

T = TypeVar("T")


_RANGE = r"\s*\d+\s*(?:-\s*\d+\s*)?"
#: What `rows` may look like: `11-20`, `7`, or several of them joined by commas.
ROWS_PATTERN = rf"^{_RANGE}(?:,{_RANGE})*$"


def parse_rows(value: str) -> list[int]:
    """`"11-13"` → [11, 12, 13]; `"7"` → [7]; `"1-2,9"` → [1, 2, 9]. `ValueError` otherwise."""
    if not re.fullmatch(ROWS_PATTERN, value):
        raise ValueError(f"rows must look like '11-20', '7' or '1-10,15', got {value!r}")
    numbers: list[int] = []
    for part in value.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if not 1 <= low <= high:
            raise ValueError(f"rows must run forwards from 1, got {value!r}")
        numbers.extend(range(low, high + 1))
    return numbers


def format_rows(numbers: list[int]) -> str:
    """Sorted row numbers as `parse_rows` reads them: [1, 2, 3, 7] → `"1-3,7"`."""
    parts: list[str] = []
    for number in sorted(numbers):
        if parts and number == int(parts[-1].rpartition("-")[2]) + 1:
            parts[-1] = f"{parts[-1].partition('-')[0]}-{number}"
        else:
            parts.append(str(number))
    return ",".join(parts)


def chunk_rows(rows: list[dict[str, Any]], size: int) -> list[list[int]]:
    """The row numbers of each chunk: about `size` rows each, in manifest order, never
    splitting a chain (rows joined by `video: @<id>` run in the same chunk, so each can wait
    for the other's result)."""
    ids = {str(row.get("id") or f"row-{n}"): n for n, row in enumerate(rows, 1)}
    group = list(range(len(rows) + 1))  # union-find over row numbers

    def root(n: int) -> int:
        while group[n] != n:
            group[n] = group[group[n]]
            n = group[n]
        return n

    for n, row in enumerate(rows, 1):
        video = row.get("video")
        if isinstance(video, str) and video.strip().startswith(UPSTREAM_PREFIX):
            above = ids.get(video.strip()[len(UPSTREAM_PREFIX) :].strip())
            if above is not None:
                group[root(n)] = root(above)
    units: dict[int, list[int]] = {}
    for n in range(1, len(rows) + 1):
        units.setdefault(root(n), []).append(n)
    chunks: list[list[int]] = []
    for unit in units.values():  # in the order of their first rows
        if not chunks or len(chunks[-1]) + len(unit) > size:
            chunks.append([])
        chunks[-1].extend(unit)
    return [sorted(chunk) for chunk in chunks]


@dataclass(frozen=True)
class ChunkPlan:
    """A manifest to run as chunk runs: its rows as read, and how it may be shown."""

    rows: list[dict[str, Any]]
    #: The manifest's path or URL with any password removed, or "inline (n rows)".
    source: str
    chunk_size: int

    @property
    def chunks(self) -> list[list[int]]:
        return chunk_rows(self.rows, self.chunk_size)


async def plan_chunks(manifest: Any, chunk_size: int | None, rows: str | None) -> ChunkPlan | None:
    """How this run fans out into chunk runs, or None when it runs every row itself."""
    if not chunk_size or rows is not None:
        return None
    if deployment.get_id() is None:
        get_run_logger().info(
            "chunk_size applies to runs of a deployment; this run does every row itself"
        )
        return None
    raw, _, source = await anyio.to_thread.run_sync(read_rows, manifest)
    return ChunkPlan(raw, source, chunk_size) if len(raw) > chunk_size else None


async def run_in_chunks(
    manifest: Any, plan: ChunkPlan, *, artifact_prefix: str, max_cost: float | None = None
) -> RunReport:
    """Run every chunk as a flow run of this deployment, wait, and merge their reports; a spend
    cap (`max_cost`) is shared by all of them (`SharedBudget`)."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc)
    parent_id = flow_run.get_id()
    assert parent_id is not None, "chunks run inside a flow run"
    async with get_client() as client:
        # The parameters as stored (blocks as references), not as resolved in this process.
        stored = (await client.read_flow_run(UUID(parent_id))).parameters
    name = f"{flow_run.get_flow_name()}/{deployment.get_name()}"
    total, chunks = len(plan.rows), plan.chunks
    budget = None
    if max_cost is not None:
        budget = budget_limit_name(str(parent_id))
        await SharedBudget.create(budget, max_cost)
    logger.info("Running %d rows as %d chunk runs of %s", total, len(chunks), name)
    progress = ProgressArtifact(artifact_prefix, total)
    await progress.start(f"Rows of {len(chunks)} chunk runs that reached their outcome")

    settings = SupervisionSettings.from_env()
    outage = ApiOutage(
        logger, settings.server_outage_timeout,
        waiting="chunk runs go on by themselves, and this run waits for it",
    )  # fmt: skip
    #: Every flow run this run made (itself, and each chunk run, tried again or not).
    own_runs = {str(parent_id)}

    async def chunk(numbers: list[int]) -> list[ItemResult]:
        rows = format_rows(numbers)
        parameters = {**stored, "rows": rows, "chunk_size": None, "fail_on_item_error": False,
                      "budget": budget}  # fmt: skip
        problem = "was never started"
        for attempt in range(settings.chunk_retries + 1):
            again = f"-again-{attempt}" if attempt else ""
            start = partial(
                arun_deployment, name, parameters=parameters, timeout=0, as_subflow=True,
                flow_run_name=f"{flow_run.get_name()}-rows-{rows}{again}",
                idempotency_key=f"{parent_id}-rows-{rows}{again}",
            )  # fmt: skip
            run = await _reaching(outage, start)
            if run is None:  # the API stayed away: nothing more can be started
                problem = f"could not be started: the Prefect API was out of reach for " \
                          f"{outage.away_for:.0f} s"  # fmt: skip
                break
            own_runs.add(str(run.id))
            async with get_client() as client:
                verdict = await watch_chunk_run(client, run.id, settings, outage)
            if verdict.report is not None:
                progress.advance(len(verdict.report.items))
                return verdict.report.items
            problem = f"{run.name} {verdict.problem}"
            if not verdict.retry or attempt == settings.chunk_retries:
                break
            logger.warning(
                "Chunk run %s (rows %s) %s: running it again (%d of %d); its paid jobs are "
                "cached, so nothing is paid twice", run.name, rows, verdict.problem,
                attempt + 1, settings.chunk_retries,
            )  # fmt: skip
            await _cancel(run.id, verdict.problem or "", outage)
        logger.error("Rows %s: chunk run %s; their outcome is not known here", rows, problem)
        items = _lost_rows(plan, numbers, problem)
        progress.advance(len(items))
        return items

    results = await asyncio.gather(*(chunk(numbers) for numbers in chunks))
    await progress.finish()
    # A row a chunk took from the cache may have been paid by an earlier try of its chunk:
    # that is this run too.
    items = sorted((_paid_by(item, own_runs) for part in results for item in part),
                   key=lambda item: item.row)  # fmt: skip
    output = next((item.output.rsplit("/", 1)[0] for item in items if item.output), "")
    skipped = sum(item.status == "skipped" for item in items)
    stopped_by = (
        f"the spend cap of ${max_cost:.2f} was reached: {skipped} row(s) not submitted"
        if skipped and max_cost is not None
        else None
    )
    if budget is not None:  # every chunk is done with it
        await _reaching(outage, partial(_delete_limit, budget))
    report = RunReport(
        manifest=plan.source,
        stopped_by=stopped_by,
        output=output,
        items=items,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        flow_run_id=parent_id,
    )
    sheet = await anyio.to_thread.run_sync(ContactSheet.of, items)
    await _reaching(outage, partial(publish_report, report, artifact_prefix, sheet))
    emit_run_event(report, stopped_by=stopped_by)
    await publish_gallery(report, logger)
    remote = "://" in output
    background = Background(logger)
    succeeded = [item for item in items if item.status == "succeeded"]
    for item in succeeded[:MAX_VIDEO_ARTIFACTS]:
        poster = await anyio.to_thread.run_sync(_poster_of, item)
        background.submit(publish_video(item, artifact_prefix, poster=poster, remote_output=remote))
    await background.flush()
    logger.info("%s across %d chunk runs in %.1f s", report.summary_line(), len(chunks),
                report.elapsed_seconds)  # fmt: skip
    return report


def _poster_of(item: ItemResult) -> Poster | None:
    """The poster a chunk run made for `item`, read back (None when there is none)."""
    try:
        return read_poster(item.thumbnail) if item.thumbnail else None
    except PosterError:
        return None


async def _reaching(outage: ApiOutage, call: Callable[[], Awaitable[T]]) -> T | None:
    """`call()`, asked again while the Prefect API is out of reach, up to the outage limit;
    None if it stays away that long."""
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_out_of_reach(exc):
                raise
            outage.failed(exc)
            if outage.exceeded:
                return None
            await asyncio.sleep(CHUNK_POLL_SECONDS)
            continue
        outage.reached()
        return result


def _paid_by(item: ItemResult, runs: set[str]) -> ItemResult:
    """`item` with `paid_by_this_run` as this chunked run sees it: paid by any of `runs`."""
    if item.paid_by_this_run is None:
        return item
    return item.model_copy(update={"paid_by_this_run": item.paid_in_flow_run in runs})


async def _delete_limit(name: str) -> None:
    async with get_client() as client:
        with contextlib.suppress(ObjectNotFound):
            await client.delete_global_concurrency_limit_by_name(name)


async def _cancel(run_id: UUID, reason: str, outage: ApiOutage) -> None:
    """Cancel a chunk run that is to be run again, so that it cannot start late (its worker
    back) beside its replacement. Forced: a dead worker cannot see it through."""
    state: State[Any] = Cancelled(message=f"run again by its parent: it {reason}")

    async def cancel() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(run_id, state, force=True)

    await _reaching(outage, cancel)


def _lost_rows(plan: ChunkPlan, numbers: list[int], problem: str) -> list[ItemResult]:
    """Rows of a chunk run that ended without a report: their outcome is not known here."""
    raw = plan.rows
    message = (f"chunk run {problem}; run the manifest again to finish these rows (nothing "
               "already submitted is paid for again)")  # fmt: skip
    return [
        ItemResult(
            id=str(raw[n - 1].get("id") or f"row-{n}"),
            row=n,
            status="unknown",
            source=shown(raw[n - 1].get("video"), 300),
            error=ItemError(code="chunk_failed", message=message),
        )
        for n in numbers
        if n <= len(raw)
    ]
