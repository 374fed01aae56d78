"""The reference: a minimal asyncio + httpx client doing the same work as the flow, no Prefect.

What a careful engineer writes in an afternoon: submissions spaced 1/rate apart (a 429 is
waited out and sent again), each job polled at a fixed interval, each result streamed to a
file. It remembers nothing if the process dies, and it reports nothing; it only sets the pace
that orchestration has to keep up with.

    python benchmarks/reference.py MANIFEST.csv OUTPUT_DIR --rate 20 --poll 0.25
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import time
from pathlib import Path

import httpx


async def run(manifest: Path, output: Path, rate: float, poll: float) -> dict[str, int]:
    """Extend every row of `manifest` and return the counts of what happened."""
    base = os.environ["GROK_VIDEO_BASE_URL"].rstrip("/")
    headers = {"Authorization": f"Bearer {os.environ['GROK_VIDEO_API_KEY']}"}
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    output.mkdir(parents=True, exist_ok=True)
    counts = {"succeeded": 0, "failed": 0, "rate_limited": 0}
    next_slot = time.monotonic()
    slot_lock = asyncio.Lock()

    async def paced_submit(http: httpx.AsyncClient, row: dict[str, str]) -> str:
        nonlocal next_slot
        while True:
            async with slot_lock:
                wait = next_slot - time.monotonic()
                next_slot = max(next_slot, time.monotonic()) + 1.0 / rate
            await asyncio.sleep(max(0.0, wait))
            body = {
                "video": row["video"],
                "prompt": row["prompt"],
                "duration": int(row.get("duration") or 6),
            }
            response = await http.post(f"{base}/videos/extensions", json=body)
            if response.status_code == 429:
                counts["rate_limited"] += 1
                await asyncio.sleep(float(response.headers.get("Retry-After") or 1))
                continue
            response.raise_for_status()
            return response.json()["request_id"]

    async def one(http: httpx.AsyncClient, row: dict[str, str]) -> None:
        request_id = await paced_submit(http, row)
        while True:
            await asyncio.sleep(poll)
            job = (await http.get(f"{base}/videos/{request_id}")).json()
            if job["status"] != "pending":
                break
        if job["status"] != "done" or not job["video"]["url"]:
            counts["failed"] += 1
            return
        async with http.stream("GET", job["video"]["url"]) as response:
            response.raise_for_status()
            with (output / f"{row['id']}.mp4").open("wb") as file:
                async for chunk in response.aiter_bytes():
                    file.write(chunk)
        counts["succeeded"] += 1

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as http:
        await asyncio.gather(*(one(http, row) for row in rows))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--rate", type=float, default=1.0, help="submissions per second")
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    args = parser.parse_args()
    counts = asyncio.run(run(args.manifest, args.output, args.rate, args.poll))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
