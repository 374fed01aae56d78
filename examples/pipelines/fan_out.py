"""An async flow that fans out over many prompts at once, under the shared submit rate.

    python examples/pipelines/fan_out.py --output fan-out

`asyncio.gather` starts the generations together; each is a flow run of its own, and all of
them take their turns at the service through one Prefect global concurrency limit
(`grok-video-submit`), so together they stay under the rate the service allows: no 429.

At most `in_flight` of them run at once (5 here). Prefect's local server keeps its runs in
SQLite, which lets one write through at a time: flow runs created together make it answer
503 ("database is locked"), which Prefect's client retries with growing waits, 5 times.
Measured on 2 cores: 20 flow runs at once took 60 s or more and failed in 3 of 7 tries when
the retries ran out (a flow of 50 empty subflows fails the same way, without this package);
5 at a time took 34 to 36 s and did not fail in 5 tries. On a PostgreSQL-backed server, raise
`in_flight`; for hundreds of videos, one `make_videos` run with a row per prompt is one flow
run and has no such limit.
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
    prompts: list[str] = PROMPTS,
    output: str = "fan-out",
    submit_rate: float = 1.0,
    in_flight: int = 5,
) -> list[ItemResult]:
    """One 2-second generation per prompt, `in_flight` flow runs at a time."""
    turns = asyncio.Semaphore(in_flight)

    async def generate(number: int, prompt: str) -> ItemResult:
        async with turns:  # `.aio`: the call as a coroutine to a type checker too
            return await generate_video.aio(
                prompt, duration=2, output=output, id=f"lantern-{number:02d}",
                submit_rate=submit_rate,
            )  # fmt: skip

    return list(await asyncio.gather(*(
        generate(number, prompt) for number, prompt in enumerate(prompts, start=1)
    )))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="fan-out")
    parser.add_argument("--in-flight", type=int, default=5)
    arguments = parser.parse_args()
    videos = asyncio.run(fan_out(output=arguments.output, in_flight=arguments.in_flight))
    print("\n".join(f"{video.id}: {video.status} {video.output}" for video in videos))
