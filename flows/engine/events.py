"""Prefect events of a run, for automations and downstream deployments.

Every row that reaches an outcome emits one event, `grok-video.video.<status>` (`succeeded`,
`failed`, `moderated`, `expired`, `timed_out`, `unknown`, `invalid`, `upstream_failed`,
`skipped`), and a run emits one `grok-video.run.finished` at its end:

==================  ==========================================================================
resource            `grok-video.request.<request_id>` (the job), or, for a row nothing was
                    submitted for, `grok-video.row.<flow run id>.<row>`; its name is the row's id
related             the flow run (and its flow, deployment and tags, which Prefect adds), and
                    the row's output file (its asset key, role `output`) once downloaded
payload             row, id, action, status, request_id, upstream, duration, video_seconds,
                    cost_usd, output, error code: never the key, never a data URL's body
==================  ==========================================================================

An event's id is derived from the job and the outcome (`uuid5`), and Prefect's server keeps
one event per id: a rerun that finds a job already done announces nothing new about it.
"""

from __future__ import annotations

import uuid
from typing import Any

from prefect.events import emit_event

from prefect_grok_video.flows.engine.assets import asset_key
from prefect_grok_video.report import ItemResult, RunReport

__all__ = ["RUN_EVENT", "VIDEO_EVENT_PREFIX", "emit_row_event", "emit_run_event", "row_event_id"]

VIDEO_EVENT_PREFIX = "grok-video.video."
RUN_EVENT = "grok-video.run.finished"
#: The namespace of this package's event ids (uuid5 of a job and its outcome).
_NAMESPACE = uuid.UUID("5d7f1e52-2d0b-4c59-9a53-7a6a3f1c9e10")


def row_event_id(item: ItemResult, flow_run_id: str | None) -> uuid.UUID:
    """The id of a row's event: the same for the same job and outcome, run after run; for a
    row nothing was submitted for, the same within one run."""
    subject = f"request:{item.request_id}" if item.request_id else f"row:{flow_run_id}:{item.row}"
    return uuid.uuid5(_NAMESPACE, f"{subject}:{item.status}")


def _resource(item: ItemResult, flow_run_id: str | None) -> dict[str, str]:
    resource_id = (
        f"grok-video.request.{item.request_id}"
        if item.request_id
        else f"grok-video.row.{flow_run_id or 'none'}.{item.row}"
    )
    resource = {"prefect.resource.id": resource_id, "prefect.resource.name": item.id}
    if item.action:
        resource["grok-video.action"] = item.action
    return resource


def _payload(item: ItemResult) -> dict[str, Any]:
    return {
        "row": item.row,
        "id": item.id,
        "action": item.action,
        "status": item.status,
        "request_id": item.request_id,
        "upstream": item.upstream,
        "duration": item.duration,
        "video_seconds": item.video_seconds,
        "cost_usd": item.cost_usd,
        "paid_by_this_run": item.paid_by_this_run,
        "output": item.output,
        "error": item.error.code if item.error else None,
    }


def emit_row_event(item: ItemResult, flow_run_id: str | None) -> None:
    """Announce one row's outcome (see the module docstring)."""
    related = []
    if flow_run_id:
        related.append(
            {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
             "prefect.resource.role": "flow-run"}
        )  # fmt: skip
    output_key = asset_key(item.output) if item.output else None
    if output_key:
        related.append({"prefect.resource.id": output_key, "prefect.resource.role": "output"})
    emit_event(
        event=f"{VIDEO_EVENT_PREFIX}{item.status}",
        resource=_resource(item, flow_run_id),
        related=related,
        payload=_payload(item),
        id=row_event_id(item, flow_run_id),
    )


def emit_run_event(report: RunReport, *, stopped_by: str | None = None) -> None:
    """Announce the end of a run: its counts, cost and wall time."""
    run_id = report.flow_run_id or "none"
    related = []
    if report.flow_run_id:
        related.append(
            {"prefect.resource.id": f"prefect.flow-run.{run_id}",
             "prefect.resource.role": "flow-run"}
        )  # fmt: skip
    emit_event(
        event=RUN_EVENT,
        resource={
            "prefect.resource.id": f"grok-video.run.{run_id}",
            "prefect.resource.name": report.manifest,
        },
        related=related,
        payload={
            "manifest": report.manifest,
            "output": report.output,
            "rows": len(report.items),
            "totals": report.totals,
            "cost_usd": report.total_cost_usd,
            "cost_this_run_usd": report.cost_this_run_usd,
            "elapsed_seconds": report.elapsed_seconds,
            "succeeded": report.all_succeeded,
            "stopped_by": stopped_by,
        },
    )
