"""A downstream flow started by every `grok-video.video.succeeded` event: it checks the video
and publishes a copy with a JSON sidecar.

    python examples/pipelines/post_process.py --published published   # serves until Ctrl-C

While it serves, every video any grok-video run makes on the same Prefect server starts a run
of it (Prefect's triggers service turns the event into a flow run of this served deployment).
Replace `post_process` with your own work: transcoding, upload, a review queue.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import av
from prefect import flow, get_run_logger
from prefect.events import DeploymentEventTrigger

#: A run of this flow for every video that succeeds, with its file and row id.
TRIGGER = DeploymentEventTrigger(
    name="grok-video-post-process",
    expect={"grok-video.video.succeeded"},
    parameters={"video": "{{ event.payload.output }}", "row_id": "{{ event.resource.name }}"},
)


@flow(name="post-process-video")
def post_process(video: str, row_id: str, published: str = "published") -> str:
    """Decode the video to its last frame (a broken file fails here, not in front of a viewer),
    then copy it to `published/<row_id>.mp4` beside `<row_id>.json` (length, size, frames)."""
    with av.open(video) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        facts = {"row_id": row_id, "source": video, "frames": frames,
                 "seconds": round(container.duration / 1e6, 3),
                 "width": stream.width, "height": stream.height}  # fmt: skip
    folder = Path(published)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{row_id}.mp4"
    shutil.copyfile(video, target)
    facts["bytes"] = target.stat().st_size
    (folder / f"{row_id}.json").write_text(json.dumps(facts, indent=2) + "\n")
    get_run_logger().info("Published %s: %s s, %s frames", target, facts["seconds"], frames)
    return str(target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--published", default="published")
    published = str(Path(parser.parse_args().published).absolute())
    post_process.serve(name="post-process", triggers=[TRIGGER],
                       parameters={"published": published})  # fmt: skip
