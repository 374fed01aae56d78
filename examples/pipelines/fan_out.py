"""An async flow that fans out over many prompts at once, under the shared submit rate.

    python examples/pipelines/fan_out.py --output fan-out

`asyncio.gather` starts every generation at once; each is a flow run of its own, and all of
them take their turns at the service through one Prefect global concurrency limit
(`grok-video-submit`), so together they stay under the rate the service allows: no 429.
"""

from __future__ import annotations

import argparse
import asyncio

from prefect import flow

from prefect_grok_video.flows import generate_video
from prefect_grok_video.report import ItemResult

PROMPTS = [f"a paper lantern number {number} drifts over a dark lake" for number in range(1, 21)]


@flow(name="fan-out-videos")
async def fan_out(
    prompts: list[str] = PROMPTS, output: str = "fan-out", submit_rate: float = 1.0
) -> list[ItemResult]:
    """One 2-second generation per prompt, all started at once."""
    return list(await asyncio.gather(*(
        generate_video(prompt, duration=2, output=output, id=f"lantern-{number:02d}",
                       submit_rate=submit_rate)
        for number, prompt in enumerate(prompts, start=1)
    )))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="fan-out")
    videos = asyncio.run(fan_out(output=parser.parse_args().output))
    print("\n".join(f"{video.id}: {video.status} {video.output}" for video in videos))
