"""A faithful local stand-in for the Grok video extension API (API.md), for tests and demos.

`EmulatorServer` serves a real HTTP API on 127.0.0.1 (uvicorn in a background thread) with
jobs that go `pending` -> `done` / `failed` / `expired` and real, playable MP4 results::

    with EmulatorServer(EmulatorConfig(latency=0.5)) as server:
        server.base_url   # http://127.0.0.1:<port>/grok/v1
        server.api_key    # "emulator-key"
        server.state      # jobs and counters (also at GET {base_url}/_emulator/stats)

Or from a shell: `grok-video emulator --port 8000`.

Prompt directives (anywhere in the prompt) make outcomes deterministic:

- `#moderated`: `done` with `respect_moderation: false` and an empty `url`.
- `#fail=<code>`: `failed` with that code (`invalid_argument`, `permission_denied`,
  `failed_precondition`, `service_unavailable`, `internal_error`) and a realistic message.
- `#fail-first=<code>`: fails with that code on the first accepted submission of this
  (prompt, input) pair only; later submissions succeed (a transient error a resubmit fixes).
- `#expired`: `expired`.
- `#latency=<seconds>`: this job stays `pending` that long instead of the configured latency.

Validation the real service does after accepting a job is done the same way (the job ends
`failed` with `invalid_argument` on the first poll): an empty or too long prompt, a duration
that is not a whole number from 2 to 10, `aspect_ratio`/`resolution` given, a data URL that is
not base64 or not an MP4 that `prefect_grok_video.mp4.preflight` accepts, and a `video` that is
neither an http(s) URL (accepted without fetching), a data URL nor a file id (`file-...`).

A finished video is the input followed by the new segment: `video.duration` is the input's
length (from its MP4 header for data URLs, `assumed_input_seconds` = 5 s for URLs and file ids)
plus `duration`. `usage.cost_in_usd_ticks` is a made-up price: `usd_per_second` = 0.05 USD per
output second, in ticks of 1e-10 USD (an 11 s video costs 5_500_000_000 ticks).

Seeded faults (`EmulatorConfig.p_*`, one `random.Random(seed)`) model 5xx and 429 answers
(always before a job is created on submit), slow answers, answers cut off after the job was
created (`p_drop_after_accept`), and first attempts that end `service_unavailable`.
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
