"""Every knob of the emulator, with defaults that behave like the real service."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefect_grok_video.operations import ASPECT_RATIOS, MODELS

__all__ = ["DEFAULT_EMULATOR_API_KEY", "EmulatorConfig", "GiB"]

#: The bearer token the emulator accepts unless configured otherwise.
DEFAULT_EMULATOR_API_KEY = "emulator-key"
GiB = 1024**3

_Probability = Field(default=0.0, ge=0.0, le=1.0)


class EmulatorConfig(BaseModel):
    """Knobs of the emulator (immutable; unknown names are refused so typos fail loudly).

    Probabilities (`p_*`) are drawn from one `random.Random(seed)`, only for knobs above 0, so
    the same seed and the same sequence of requests give the same answers.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Authentication and models
    api_key: str = Field(default=DEFAULT_EMULATOR_API_KEY, description="Accepted bearer token.")
    forbidden_keys: frozenset[str] = Field(
        default=frozenset(), description="Bearer tokens answered 403 permission_denied."
    )
    models: tuple[str, ...] = Field(
        default=tuple(MODELS),
        description="Known model ids (the first is used when a request names none); the limits "
        "of each come from `prefect_grok_video.operations.MODELS` (the default model's for one "
        "not listed there).",
    )

    # Job lifecycle
    latency: float = Field(default=3.0, ge=0, description="Seconds a job stays pending.")
    latency_jitter: float = Field(
        default=0.0, ge=0, le=1, description="Latency varies by up to this fraction (seeded)."
    )
    seed: int = Field(default=0, description="Seed of the one random generator.")
    report_progress: bool = Field(
        default=True,
        description="Pending polls carry `progress` (0-99, linear in time); False leaves it out, "
        "as the service may (API.md: progress is optional).",
    )
    default_aspect_ratio: str = Field(
        default="16:9", description="Aspect ratio of a generation that asks for none (API.md)."
    )
    default_resolution: str = Field(
        default="480p", description="Resolution of a generation that asks for none."
    )
    assumed_input_seconds: float = Field(
        default=5.0, gt=0, description="Input length assumed for URLs and file ids (not fetched)."
    )
    max_prompt_chars: int = Field(default=4096, gt=0, description="Longest accepted prompt.")
    usd_per_second: float = Field(
        default=0.05, ge=0, description="Made-up price of one output second, for `usage`."
    )
    url_ttl: float = Field(default=86400.0, gt=0, description="Seconds a result URL works.")
    job_ttl: float | None = Field(
        default=None,
        gt=0,
        description="A job not polled to a terminal status within this many seconds of its "
        "creation reports `expired` (None: never).",
    )

    # Transport rules
    max_body_bytes: int = Field(default=GiB, gt=0, description="Larger bodies get 413.")
    require_content_length: bool = Field(
        default=True, description="Refuse chunked uploads (no Content-Length) with 411."
    )

    # Rate limiting of submissions (token bucket)
    submit_rate: float | None = Field(
        default=1.0, gt=0, description="Submissions per second (None: unlimited)."
    )
    submit_burst: int = Field(default=1, ge=1, description="Bucket size of the rate limit.")
    submit_tolerance: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a submission may come early on the rate and still pass (the "
        "network jitter a real limiter forgives; the rate itself is never exceeded). 0: strict.",
    )
    fractional_retry_after: bool = Field(
        default=False, description="Send Retry-After as decimal seconds instead of whole ones."
    )
    storm_retry_after: float = Field(
        default=1.0, gt=0, description="Retry-After of the spurious 429s (p_submit_429/p_poll_429)."
    )

    # Seeded faults
    p_submit_5xx: float = _Probability
    p_poll_5xx: float = _Probability
    p_submit_429: float = _Probability
    p_poll_429: float = _Probability
    p_drop_after_accept: float = _Probability
    p_first_attempt_unavailable: float = _Probability
    p_slow: float = _Probability
    p_slow_poll: float = _Probability
    slow_response_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Delay of a slow answer: a submit or poll with probability p_slow, a poll "
        "with probability p_slow_poll.",
    )
    accepted_answer_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Seconds between accepting a submission (the job exists, and is paid for) "
        "and answering it: the window in which a client that dies cannot know of its job.",
    )
    download_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a result download takes, sent in slices (0: at once).",
    )
    pictures: Literal["drawn", "flat"] = Field(
        default="drawn",
        description="What results show: 'drawn' looks like what was asked (the input's frames "
        "recoloured or extended, a still or a seeded sky, the prompt written in; about 0.1 s "
        "of CPU a second of video, made in a thread on first download); 'flat' is grey frames "
        "written without an encoder (for load tests: thousands of results a second).",
    )
    max_drawn_input_bytes: int = Field(
        default=32 * 1024**2,
        ge=0,
        description="Inputs larger than this are not kept to draw from (a drawn sky instead).",
    )

    @field_validator("models")
    @classmethod
    def _some_model(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one model id is needed")
        return value

    @field_validator("default_aspect_ratio")
    @classmethod
    def _known_aspect_ratio(cls, value: str) -> str:
        if value not in ASPECT_RATIOS:
            raise ValueError(f"must be one of {', '.join(ASPECT_RATIOS)}")
        return value

    @field_validator("default_resolution")
    @classmethod
    def _known_resolution(cls, value: str) -> str:
        offered = {r for model in MODELS.values() for r in model.of("generate").resolutions}
        if value not in offered:
            raise ValueError(f"must be one of {', '.join(sorted(offered))}")
        return value

    @classmethod
    def from_file(cls, path: str | Path) -> EmulatorConfig:
        """Load knobs from a JSON object file (e.g. `{"latency": 0.5, "p_poll_5xx": 0.1}`)."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> EmulatorConfig:
        """A copy with `changes` applied and validated."""
        return type(self).model_validate({**self.model_dump(), **changes})
