"""The flow a Prefect user would write first: `.map` over a sync task that submits, polls every
second and downloads. A 429 or any error fails the task, and Prefect retries it a second later.

    python benchmarks/naive_flow.py MANIFEST.csv OUTPUT_DIR
"""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path

import httpx
from prefect import flow, task, unmapped


@task(retries=10, retry_delay_seconds=1)
def extend_row(row: dict[str, str], output: str) -> str:
    """Submit one row, poll it every second until it ends, download the result."""
    base = os.environ["GROK_VIDEO_BASE_URL"].rstrip("/")
    headers = {"Authorization": f"Bearer {os.environ['GROK_VIDEO_API_KEY']}"}
    with httpx.Client(headers=headers, timeout=60) as http:
        body = {
            "video": row["video"],
            "prompt": row["prompt"],
            "duration": int(row.get("duration") or 6),
        }
        response = http.post(f"{base}/videos/extensions", json=body)
        response.raise_for_status()
        request_id = response.json()["request_id"]
        while True:
            time.sleep(1)
            job = http.get(f"{base}/videos/{request_id}").json()
            if job["status"] != "pending":
                break
        if job["status"] != "done":
            raise RuntimeError(f"{row['id']}: {job['status']}")
        path = Path(output) / f"{row['id']}.mp4"
        path.write_bytes(http.get(job["video"]["url"]).content)
    return str(path)


@flow
def naive_extend(manifest: str, output: str) -> list[str]:
    with open(manifest, encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    Path(output).mkdir(parents=True, exist_ok=True)
    return extend_row.map(rows, unmapped(output)).result()


if __name__ == "__main__":
    naive_extend(sys.argv[1], sys.argv[2])
