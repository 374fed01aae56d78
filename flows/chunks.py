"""Scaling a manifest out: one flow run per chunk of rows, on any worker of the pool.

When `extend_videos` runs from a deployment with `chunk_size` and the manifest has more rows,
the run (the parent) starts one flow run of the same deployment per chunk, with the same
parameters plus `rows="<first>-<last>"`, and waits for them. Each chunk validates and runs its
rows exactly as a whole run would: row ids and numbers come from the whole manifest, request_ids
are cached in the shared result storage, and every chunk passes the same global concurrency
limit, so the submit rate holds across all of them. The parent then merges the chunks' reports
into one `RunReport` and publishes one set of artifacts.

Chunk runs are created with an idempotency key made of the parent's id and the row range, so a
retried parent waits for the chunks it already started instead of starting them again.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import anyio
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runtime import deployment, flow_run

from prefect_grok_video.display import shown
from prefect_grok_video.flows.artifacts import (
    Background,
    ProgressArtifact,
    publish_link,
    publish_report,
)
from prefect_grok_video.manifest import read_rows
from prefect_grok_video.report import ItemError, ItemResult, RunReport

__all__ = ["ChunkPlan", "chunk_ranges", "parse_rows", "plan_chunks", "run_in_chunks"]

#: Seconds between checks of a chunk run's state.
CHUNK_POLL_SECONDS = 2.0


def parse_rows(value: str) -> tuple[int, int]:
    """`"11-20"` → (11, 20); a single `"7"` → (7, 7). `ValueError` for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)
    if not match:
        raise ValueError(f"rows must look like '11-20' or '7', got {value!r}")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= last:
        raise ValueError(f"rows must run forwards from 1, got {value!r}")
    return first, last


def chunk_ranges(total: int, size: int) -> list[tuple[int, int]]:
    """Consecutive (first, last) row ranges of at most `size` rows covering rows 1..`total`."""
    return [(first, min(first + size - 1, total)) for first in range(1, total + 1, size)]


@dataclass(frozen=True)
class ChunkPlan:
    """A manifest to run as chunk runs: its rows as read, and how it may be shown."""

    rows: list[dict[str, Any]]
    #: The manifest's path or URL with any password removed, or "inline (n rows)".
    source: str
    chunk_size: int

    @property
    def ranges(self) -> list[tuple[int, int]]:
        return chunk_ranges(len(self.rows), self.chunk_size)


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


async def run_in_chunks(manifest: Any, plan: ChunkPlan, *, artifact_prefix: str) -> RunReport:
    """Run every chunk as a flow run of this deployment, wait, and merge their reports."""
    logger = get_run_logger()
    started = datetime.now(timezone.utc)
    parent_id = flow_run.get_id()
    async with get_client() as client:
        # The parameters as stored (blocks as references), not as resolved in this process.
        stored = (await client.read_flow_run(parent_id)).parameters
    name = f"{flow_run.get_flow_name()}/{deployment.get_name()}"
    total, ranges = len(plan.rows), plan.ranges
    logger.info("Running %d rows as %d chunk runs of %s", total, len(ranges), name)
    progress = ProgressArtifact(artifact_prefix, total)
    await progress.start(f"Rows of {len(ranges)} chunk runs that reached their outcome")

    async def chunk(first: int, last: int) -> list[ItemResult]:
        parameters = {**stored, "rows": f"{first}-{last}", "chunk_size": None,
                      "fail_on_item_error": False}  # fmt: skip
        run = await run_deployment(
            name,
            parameters=parameters,
            flow_run_name=f"{flow_run.get_name()}-rows-{first}-{last}",
            idempotency_key=f"{parent_id}-rows-{first}-{last}",
            as_subflow=True,
            poll_interval=CHUNK_POLL_SECONDS,
        )
        state = run.state
        report = await state.aresult(raise_on_failure=False) if state else None
        if state is not None and state.is_completed() and isinstance(report, RunReport):
            items = report.items
        else:
            kind = state.type.value if state else "unknown"
            logger.error("Chunk run %s (rows %d-%d) ended %s", run.name, first, last, kind)
            items = _lost_rows(plan, first, last, run.name, kind)
        progress.advance(len(items))
        return items

    results = await asyncio.gather(*(chunk(first, last) for first, last in ranges))
    await progress.finish()
    items = sorted((item for part in results for item in part), key=lambda item: item.row)
    output = next((item.output.rsplit("/", 1)[0] for item in items if item.output), "")
    report = RunReport(
        manifest=plan.source,
        output=output,
        items=items,
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        flow_run_id=parent_id,
    )
    await publish_report(report, artifact_prefix)
    remote = "://" in output
    background = Background(logger)
    for item in items:
        if item.status == "succeeded":
            background.submit(publish_link(item, artifact_prefix, remote_output=remote))
    await background.flush()
    logger.info("%s across %d chunk runs in %.1f s", report.summary_line(), len(ranges),
                report.elapsed_seconds)  # fmt: skip
    return report


def _lost_rows(plan: ChunkPlan, first: int, last: int, run: str, kind: str) -> list[ItemResult]:
    """Rows of a chunk run that ended without a report: their outcome is not known here."""
    raw = plan.rows
    message = (f"chunk run {run} ended {kind} without a report; run again to finish these rows "
               "(nothing already submitted is paid for again)")  # fmt: skip
    return [
        ItemResult(
            id=str(raw[n - 1].get("id") or f"row-{n}"),
            row=n,
            status="unknown",
            source=shown(raw[n - 1].get("video"), 300),
            error=ItemError(code="chunk_failed", message=message),
        )
        for n in range(first, min(last, len(raw)) + 1)
    ]
