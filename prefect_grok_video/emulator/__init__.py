"""A faithful local stand-in for the Grok video API (API.md), for tests and demos: generations,
edits and extensions.

`EmulatorServer` serves a real HTTP API on 127.0.0.1 (uvicorn in a background thread) with
jobs that go `pending` -> `done` / `failed` / `expired` and real, playable MP4 results::

    with EmulatorServer(EmulatorConfig(latency=0.5)) as server:
        server.base_url   # http://127.0.0.1:<port>/grok/v1
        server.api_key    # "emulator-key"
        server.state      # jobs and counters (also at GET {base_url}/_emulator/stats)

Or from a shell: `grok-video emulator --port 8000`. The routes are listed in
`prefect_grok_video.emulator.app`.

Prompt directives (anywhere in the prompt) make outcomes deterministic:

- `#moderated`: `done` with `respect_moderation: false` and an empty `url`.
- `#fail=<code>`: `failed` with that code (`invalid_argument`, `permission_denied`,
  `failed_precondition`, `service_unavailable`, `internal_error`) and a realistic message.
- `#fail-first=<code>`: fails with that code on the first accepted submission of this
  (prompt, input) pair only; later submissions succeed (a transient error a resubmit fixes).
- `#expired`: `expired`.
- `#latency=<seconds>`: this job stays `pending` that long instead of the configured latency.

Validation the real service does after accepting a job is done the same way, with the limits of
`prefect_grok_video.operations.limits_for(action, model)` (the job ends `failed` on the first
poll): an empty or too long prompt, a field the operation does not take (`aspect_ratio` or
`resolution` on an edit or extension, `duration` on an edit, `video` on a generation, `image`
on an edit or extension), a duration out of range, an unknown aspect ratio, a still that is not
PNG or JPEG, an input video that is not an MP4 `prefect_grok_video.mp4.preflight` accepts or
whose length the operation does not take (`invalid_argument`); a resolution only other models
offer (`failed_precondition`). `video` and `image` may be strings or `{"url": ...}` objects;
http(s) URLs and file ids are not fetched (a video URL is assumed `assumed_input_seconds` = 5 s
long), except this emulator's own result URLs, which are known: a chain's real length is
checked, and an expired or unknown result URL cannot be fetched (`invalid_argument`).

A finished generation lasts its `duration` (8 s by default) in the frame size of its aspect
ratio and resolution (16:9 at 480p: 854x480); an edit lasts as long as its input; an extension
is the input followed by `duration` new seconds. Edits and extensions keep the input's frame size
when known (up to 720p), else 160x90. `usage.cost_in_usd_ticks` is a made-up price:
`usd_per_second` = 0.05 USD per output second, in ticks of 1e-10 USD (an 11 s video costs
5_500_000_000 ticks).

Seeded faults (`EmulatorConfig.p_*`, one `random.Random(seed)`) model 5xx and 429 answers
(always before a job is created on submit), slow answers, answers cut off after the job was
created (`p_drop_after_accept`), and first attempts that end `service_unavailable`, alike on
every route.
"""

from prefect_grok_video.emulator.app import create_app
from prefect_grok_video.emulator.config import DEFAULT_EMULATOR_API_KEY, EmulatorConfig
from prefect_grok_video.emulator.server import EmulatorServer
from prefect_grok_video.emulator.state import EmulatorState, SubmissionRecord

__all__ = [
    "DEFAULT_EMULATOR_API_KEY",
    "EmulatorConfig",
    "EmulatorServer",
    "EmulatorState",
    "SubmissionRecord",
    "create_app",
]
