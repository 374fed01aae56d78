"""What becomes of one submission: input checks, prompt directives, outcome, and its poll answer.

Pure functions and a `Job` record, without HTTP or locking, so the rules read in one place.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from prefect_grok_video.errors import PreflightError
from prefect_grok_video.mp4 import preflight

__all__ = [
    "JOB_ERROR_MESSAGES",
    "Directives",
    "Job",
    "ResolvedInput",
    "parse_directives",
    "resolve_input",
    "usage_ticks",
]

MIN_DURATION, MAX_DURATION = 2, 10
USD_PER_TICK = 1e-10
_FILE_ID = re.compile(r"file[-_][A-Za-z0-9_-]+")
_DIRECTIVE = re.compile(r"#([a-z][a-z-]*)(?:=([^\s#]*))?")

#: Realistic messages of the asynchronous error codes (API.md, section 3).
JOB_ERROR_MESSAGES = {
    "invalid_argument": "The request was rejected: the input video or prompt is not supported "
    "for video extension.",
    "permission_denied": "The API key does not have permission to generate videos with this model.",
    "failed_precondition": "The model does not support video extension with these settings.",
    "service_unavailable": "The video generation service is currently overloaded. Please try "
    "again later.",
    "internal_error": "An internal error occurred while generating the video. Please retry; if "
    "the problem persists, contact support with the request id.",
}


@dataclass(frozen=True)
class Directives:
    """Outcome directives found in a prompt (see the package docstring)."""

    moderated: bool = False
    expired: bool = False
    fail: str | None = None
    fail_first: str | None = None
    latency: float | None = None
    problem: str | None = None  # a malformed directive, reported as invalid_argument


def parse_directives(prompt: str) -> Directives:
    """Read `#moderated`, `#expired`, `#fail=`, `#fail-first=` and `#latency=` from a prompt."""
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(prompt):
        name, value = match.group(1), match.group(2)
        if name in ("moderated", "expired") and value is None:
            found[name] = True
        elif name in ("fail", "fail-first"):
            if not value or not re.fullmatch(r"[a-z_]+", value):
                example = f"#{name}=service_unavailable"
                found["problem"] = f"emulator directive #{name} needs an error code, e.g. {example}"
            else:
                found[name.replace("-", "_")] = value
        elif name == "latency":
            try:
                seconds = float(value or "")
            except ValueError:
                seconds = -1.0
            if not (seconds >= 0 and math.isfinite(seconds)):
                found["problem"] = f"emulator directive #latency needs seconds, got {value!r}"
            else:
                found["latency"] = seconds
    return Directives(**found)


@dataclass(frozen=True)
class ResolvedInput:
    """The `video` field understood: its counter key, its length, or why it is refused."""

    key: str
    seconds: float | None = None
    problem: str | None = None


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def resolve_input(video: str, assumed_seconds: float) -> ResolvedInput:
    """Classify and check `video` without network (data URLs are decoded and preflighted)."""
    if video.startswith(("http://", "https://")):
        return ResolvedInput(video, assumed_seconds)
    if _FILE_ID.fullmatch(video):
        return ResolvedInput(video, assumed_seconds)
    if not video.startswith("data:"):
        key = "sha256:" + hashlib.sha256(video.encode("utf-8", "replace")).hexdigest()
        return ResolvedInput(
            key,
            problem=f"Invalid video: expected a public http(s) URL, a base64 data URL or a file "
            f"id, got {_short(video)}.",
        )
    header, comma, payload = video[5:].partition(",")
    raw_key = "sha256:" + hashlib.sha256(video.encode("utf-8", "replace")).hexdigest()
    if not comma:
        return ResolvedInput(raw_key, problem="Invalid video: malformed data URL (no comma).")
    params = header.split(";")
    if "base64" not in params[1:]:
        return ResolvedInput(
            raw_key, problem="Invalid video: the data URL must be base64-encoded (`;base64,`)."
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return ResolvedInput(raw_key, problem="Invalid video: the data URL is not valid base64.")
    key = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        info = preflight(io.BytesIO(data), len(data))
    except PreflightError as error:
        found = f" (found: {error.found})" if error.found else ""
        return ResolvedInput(key, problem=f"Invalid video: {error.message}{found}.")
    return ResolvedInput(key, info.duration)


def check_request(
    prompt: str, duration: Any, extra: dict[str, Any], max_prompt_chars: int
) -> str | None:
    """Why the prompt, duration or extra fields make the job fail `invalid_argument`, or None."""
    if not prompt.strip():
        return "Prompt cannot be empty. Please provide a prompt."
    if len(prompt) > max_prompt_chars:
        return f"Prompt is too long: {len(prompt)} characters; the maximum is {max_prompt_chars}."
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration != int(duration)
        or not MIN_DURATION <= duration <= MAX_DURATION
    ):
        return (
            f"Invalid duration {duration!r}: it must be a whole number of seconds from "
            f"{MIN_DURATION} to {MAX_DURATION}."
        )
    conflicting = sorted({"aspect_ratio", "resolution"} & extra.keys())
    if conflicting:
        return (
            f"Video extension does not accept {', '.join(conflicting)}: the output matches the "
            "input video's properties."
        )
    return None


def usage_ticks(output_seconds: float, usd_per_second: float) -> int:
    """The made-up price of an output, in ticks of 1e-10 USD."""
    return round(output_seconds * usd_per_second / USD_PER_TICK)


def _number(seconds: float) -> int | float:
    seconds = round(seconds, 3)
    return int(seconds) if seconds == int(seconds) else seconds


@dataclass
class Job:
    """An accepted submission and its planned outcome: done, moderated, failed or expired."""

    request_id: str
    model: str
    prompt: str
    duration: Any
    input_key: str
    created: float
    latency: float
    outcome: str
    token: str
    error_code: str | None = None
    error_message: str | None = None
    output_seconds: float | None = None
    cost_ticks: int | None = None
    terminal_seen: bool = False
    expired_by_ttl: bool = False
    _mp4: bytes | None = field(default=None, repr=False)

    @property
    def finished_at(self) -> float:
        """Monotonic time at which the job leaves `pending`."""
        return self.created + self.latency

    @property
    def has_file(self) -> bool:
        """Whether the job produces a downloadable video."""
        return self.outcome == "done" and not self.expired_by_ttl

    def status(
        self, now: float, root_url: str, job_ttl: float | None, *, progress: bool = True
    ) -> dict[str, Any]:
        """The poll answer at monotonic time `now` (API.md, section 2); `progress` says whether
        a pending answer reports how far the job is."""
        if job_ttl is not None and not self.terminal_seen and now - self.created > job_ttl:
            self.expired_by_ttl = True
        if self.expired_by_ttl:
            self.terminal_seen = True
            return {"status": "expired", "model": self.model}
        if now < self.finished_at:
            if not progress:
                return {"status": "pending", "model": self.model}
            done = int(100 * (now - self.created) / self.latency) if self.latency else 0
            return {"status": "pending", "model": self.model, "progress": max(0, min(99, done))}
        self.terminal_seen = True
        if self.outcome == "failed":
            return {
                "status": "failed",
                "model": self.model,
                "error": {"code": self.error_code, "message": self.error_message},
            }
        if self.outcome == "expired":
            return {"status": "expired", "model": self.model}
        assert self.output_seconds is not None
        moderated = self.outcome == "moderated"
        url = "" if moderated else f"{root_url}/files/{self.request_id}.mp4?token={self.token}"
        return {
            "status": "done",
            "model": self.model,
            "progress": 100,
            "video": {
                "url": url,
                "duration": _number(self.output_seconds),
                "respect_moderation": not moderated,
            },
            "usage": {"cost_in_usd_ticks": self.cost_ticks},
        }

    def mp4(self) -> bytes:
        """The result video, made on first use and kept."""
        from prefect_grok_video.emulator.mp4gen import make_mp4

        if self._mp4 is None:
            assert self.output_seconds is not None
            self._mp4 = make_mp4(self.output_seconds, tag=f"request_id={self.request_id}")
        return self._mp4
