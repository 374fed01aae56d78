"""Serve `make_videos` from this one process: no work pool, no worker.

    python deployments/serve.py                                   # runs on demand
    python deployments/serve.py --cron "0 2 * * *"                # and every night at 02:00 UTC
    python deployments/serve.py --manifest s3://bucket/nightly.csv --output s3://bucket/out

Runs are started from the Prefect UI (deployment `make-videos/grok-video-served`, with its
parameter form), with `prefect deployment run make-videos/grok-video-served --param ...`, or
by the schedule; this process executes them until it is stopped (Ctrl-C). Credentials come from
the `GROK_VIDEO_*` environment of this process unless a run names a credentials block.
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect import serve

from prefect_grok_video.flows import make_videos

NAME = "grok-video-served"


def main(argv: list[str] | None = None) -> int:
    """Build the served deployment from the command line, then serve it (or only register it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default=NAME, help="deployment name (default: %(default)s)")
    parser.add_argument("--cron", help='a schedule, e.g. "0 2 * * *" (UTC)')
    parser.add_argument("--manifest", help="default manifest path or URL of a run")
    parser.add_argument("--output", help="default output folder or URL of a run")
    parser.add_argument("--submit-rate", type=float, help="default submissions per second")
    parser.add_argument("--limit", type=int, default=4, help="most runs at once (%(default)s)")
    parser.add_argument(
        "--check", action="store_true", help="register the deployment, print it and exit"
    )
    args = parser.parse_args(argv)

    defaults: dict[str, Any] = {
        name: value
        for name, value in (
            ("manifest", args.manifest),
            ("output", args.output),
            ("submit_rate", args.submit_rate),
        )
        if value is not None
    }
    deployment = make_videos.to_deployment(
        name=args.name,
        cron=args.cron,
        parameters=defaults,
        tags=["grok-video", "served"],
        description="Generate, edit and extend the videos of a manifest with Grok (served by "
        "deployments/serve.py).",
    )
    if args.check:
        deployment_id = deployment.apply()
        schedule = f", schedule {args.cron!r}" if args.cron else ""
        print(f"registered make-videos/{args.name} ({deployment_id}){schedule}")
        return 0
    serve(deployment, limit=args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
