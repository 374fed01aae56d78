"""A sync nightly flow: prompts from a CSV become one generation each, and the best of them is
extended.

    python examples/pipelines/nightly.py prompts.csv --output nightly

The CSV has a `prompt` column (and optionally `id`). Every call below is a plain sync call:
the flows of prefect-grok-video return their results to a sync flow. Run it again and nothing
is paid for twice: every job already made is read from the cache.
"""

from __future__ import annotations

import argparse
import csv

from prefect import flow, task

from prefect_grok_video.flows import extend_video, make_videos
from prefect_grok_video.report import ItemResult


@task
def read_prompts(path: str) -> list[dict[str, object]]:
    """The manifest's rows: one 4-second generation per prompt of the CSV."""
    with open(path, newline="", encoding="utf-8") as file:
        return [
            {"id": row.get("id") or f"night-{number}", "action": "generate",
             "prompt": row["prompt"], "duration": 4}
            for number, row in enumerate(csv.DictReader(file), start=1)
            if row.get("prompt", "").strip()
        ]  # fmt: skip


@task
def pick_best(videos: list[ItemResult]) -> ItemResult:
    """The video to extend. Here: the most bytes a second, a stand-in for your own scoring
    (a model, a person's choice)."""
    return max(videos, key=lambda video: (video.size or 0) / (video.video_seconds or 1))


@flow(name="nightly-videos", log_prints=True)
def nightly(prompts_csv: str, output: str = "nightly") -> ItemResult:
    """Generate a video per prompt, then extend the best one by 4 seconds."""
    rows = read_prompts(prompts_csv)
    report = make_videos(rows, output=output, fail_on_item_error=False)
    for failed in report.failed:
        print(f"Row {failed.id} ended {failed.status}: {failed.error}")
    if not report.succeeded:
        raise RuntimeError("no video was made tonight")
    best = pick_best(report.succeeded)
    final = extend_video(best, "the camera pulls back to show the whole scene", duration=4,
                         output=output)  # fmt: skip
    print(f"Tonight's video: {final.output} ({final.video_seconds} s) from {best.id}")
    return final


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts_csv")
    parser.add_argument("--output", default="nightly")
    arguments = parser.parse_args()
    nightly(arguments.prompts_csv, output=arguments.output)
