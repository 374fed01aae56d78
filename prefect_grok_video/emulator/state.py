"""The emulator's memory: jobs, the seeded random generator, the rate limiter and the counters.

Shared between the server's event-loop thread and the test thread, so every access holds a lock.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from prefect_grok_video.emulator.config import EmulatorConfig
from prefect_grok_video.emulator.jobs import Job
from prefect_grok_video.operations import limits_for

__all__ = ["EmulatorState", "SubmissionRecord"]


@dataclass(frozen=True)
class SubmissionRecord:
    """One accepted submission, as the stats report it (never the video data itself)."""

    request_id: str
    monotonic: float
    wall_time: float
    model: str
    prompt: str
    duration: Any
    input_key: str
    outcome: str
    error_code: str | None
    dropped: bool
    #: The operation ("generate", "edit", "extend") and its path under the base URL.
    action: str = "extend"
    route: str = "videos/extensions"
    #: The request body's fields as sent, but its video and image.
    fields: dict[str, Any] = field(default_factory=dict)
    #: How the video or image came: its field name -> "string" or "object".
    media: dict[str, str] = field(default_factory=dict)


class EmulatorState:
    """Jobs and counters of one emulator, safe to read from any thread."""

    #: Submissions the token bucket holds now (set by `reset`).
    _tokens: float

    def __init__(
        self, config: EmulatorConfig | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._config = config or EmulatorConfig()
        self.reset()

    # -- configuration and randomness -------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """The knobs in force (replace with `reconfigure`)."""
        return self._config

    def reconfigure(self, config: EmulatorConfig) -> None:
        """Use other knobs from now on; jobs, counters and the random sequence are kept."""
        with self._lock:
            self._config = config
            self._tokens = min(self._tokens, float(config.submit_burst))

    def reset(self) -> None:
        """Forget every job and counter, refill the rate limiter and reseed the generator."""
        with self._lock:
            self.rng = random.Random(self._config.seed)
            self.jobs: dict[str, Job] = {}
            self._records: list[SubmissionRecord] = []
            self._accepted_by_input: Counter[str] = Counter()
            self._pair_attempts: Counter[tuple[str, str]] = Counter()
            self._occurrences: Counter[tuple[object, ...]] = Counter()
            self._polls: Counter[str] = Counter()
            self._downloads: Counter[str] = Counter()
            self._errors_by_status: Counter[int] = Counter()
            self._rate_limited = 0
            self._bucket_refused = 0
            self._bucket_refusals: list[dict[str, Any]] = []
            self._server_errors = 0
            self._drops = 0
            self._slow = 0
            self._tokens = float(self._config.submit_burst)
            self._bucket_time = self.clock()

    def chance(self, probability: float, *key: object) -> bool:
        """A seeded coin flip; no draw at all for probability 0 (or 1).

        With a `key` (what the decision is about: a fault kind, a request body, the how-many-th
        request of it), the flip is a hash of the seed and the key, so the same requests get
        the same faults in whatever order concurrent clients send them.
        """
        if probability <= 0:
            return False
        if probability >= 1:
            return True
        if key:
            text = "|".join(map(str, (self.config.seed, *key)))
            draw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
            return draw < probability
        with self._lock:
            return self.rng.random() < probability

    def occurrence(self, *key: object) -> int:
        """How many times `key` was seen before (and count this one)."""
        with self._lock:
            before = self._occurrences[key]
            self._occurrences[key] += 1
            return before

    def choice(self, options: list[Any]) -> Any:
        """A seeded choice among `options`."""
        with self._lock:
            return self.rng.choice(options)

    def uniform(self, low: float, high: float) -> float:
        """A seeded float in [low, high]."""
        with self._lock:
            return self.rng.uniform(low, high)

    def take_token(self, now: float, prompt: Callable[[], str] = str) -> float | None:
        """Take one submission from the token bucket: None if allowed, else seconds to wait.
        A refusal is recorded with its wall time, how early it came and its `prompt()`."""
        config = self._config
        if config.submit_rate is None:
            return None
        with self._lock:
            elapsed = max(0.0, now - self._bucket_time)
            self._tokens = min(
                float(config.submit_burst), self._tokens + elapsed * config.submit_rate
            )
            self._bucket_time = now
            # A submission up to `submit_tolerance` seconds early is let through, its debt
            # carried (a limiter that forgives jitter, never a higher rate).
            if self._tokens >= 1 - config.submit_tolerance * config.submit_rate - 1e-9:
                self._tokens -= 1
                return None
            self._bucket_refused += 1
            early = (1 - self._tokens) / config.submit_rate
            self._bucket_refusals.append(
                {"at": time.time(), "early_by": round(early, 4), "prompt": prompt()[:80]}
            )
            return early

    # -- bookkeeping --------------------------------------------------------------------------

    def attempt_of(self, prompt: str, input_key: str) -> int:
        """Count an accepted submission of a (prompt, input) pair; return how many came before."""
        with self._lock:
            before = self._pair_attempts[(prompt, input_key)]
            self._pair_attempts[(prompt, input_key)] += 1
            return before

    def add_job(self, job: Job, *, dropped: bool = False) -> None:
        """Store an accepted job and record the submission."""
        with self._lock:
            self.jobs[job.request_id] = job
            self._accepted_by_input[job.input_key] += 1
            if dropped:
                self._drops += 1
            self._records.append(
                SubmissionRecord(
                    request_id=job.request_id,
                    monotonic=job.created,
                    wall_time=time.time() - (self.clock() - job.created),
                    model=job.model,
                    prompt=job.prompt,
                    duration=job.duration,
                    input_key=job.input_key,
                    outcome=job.outcome,
                    error_code=job.error_code,
                    dropped=dropped,
                    action=job.action,
                    route=limits_for(job.action, job.model).route,
                    fields=job.fields,
                    media=job.media,
                )
            )

    def get_job(self, request_id: str) -> Job | None:
        """The job with this id, or None."""
        with self._lock:
            return self.jobs.get(request_id)

    def job_status(self, job: Job, now: float, root_url: str) -> dict[str, Any]:
        """The poll answer of `job` at monotonic time `now` (marks terminal answers as seen)."""
        with self._lock:
            config = self._config
            return job.status(now, root_url, config.job_ttl, progress=config.report_progress)

    def count_error(self, status: int) -> None:
        """Count an error answer (429 and 5xx also have their own counters)."""
        with self._lock:
            self._errors_by_status[status] += 1
            if status == 429:
                self._rate_limited += 1
            elif status >= 500:
                self._server_errors += 1

    def count_slow(self) -> None:
        """Count a deliberately slow answer."""
        with self._lock:
            self._slow += 1

    def count_poll(self, request_id: str) -> None:
        """Count a poll of a known job."""
        with self._lock:
            self._polls[request_id] += 1

    def count_download(self, request_id: str) -> None:
        """Count a served result file."""
        with self._lock:
            self._downloads[request_id] += 1

    # -- reading ------------------------------------------------------------------------------

    @property
    def accepted(self) -> int:
        """Accepted submissions (jobs created), dropped answers included."""
        with self._lock:
            return len(self._records)

    @property
    def accepted_by_input(self) -> dict[str, int]:
        """Accepted submissions per input key: the video's, else the still's (`sha256:<hex>`
        of data-URL bytes, else the URL or file id), else `prompt:sha256:<hex>` of the prompt."""
        with self._lock:
            return dict(self._accepted_by_input)

    @property
    def submissions(self) -> list[SubmissionRecord]:
        """Every accepted submission, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def polls(self) -> dict[str, int]:
        """Polls per request_id."""
        with self._lock:
            return dict(self._polls)

    @property
    def downloads(self) -> dict[str, int]:
        """Served result files per request_id."""
        with self._lock:
            return dict(self._downloads)

    @property
    def rate_limited(self) -> int:
        """429 answers sent (token bucket and spurious storms)."""
        with self._lock:
            return self._rate_limited

    @property
    def bucket_refused(self) -> int:
        """Submissions refused by the rate limit itself (429s a client's pace should avoid),
        not the spurious storms of `p_submit_429`."""
        with self._lock:
            return self._bucket_refused

    @property
    def server_errors(self) -> int:
        """5xx answers sent."""
        with self._lock:
            return self._server_errors

    @property
    def drops(self) -> int:
        """Accepted submissions whose answer was cut off."""
        with self._lock:
            return self._drops

    @property
    def slow_answers(self) -> int:
        """Answers delayed by `slow_response_seconds`."""
        with self._lock:
            return self._slow

    @property
    def errors_by_status(self) -> dict[int, int]:
        """Every error answer sent, per HTTP status."""
        with self._lock:
            return dict(self._errors_by_status)

    def peak_accepted_per_second(self, window: float = 1.0) -> int:
        """Most submissions accepted within any `window` seconds (strictly less apart)."""
        times = sorted(record.monotonic for record in self.submissions)
        peak, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= window:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    def stats(self) -> dict[str, Any]:
        """Every counter as a JSON-ready dict (what `GET /_emulator/stats` answers)."""
        with self._lock:
            return {
                "accepted": self.accepted,
                "accepted_by_input": self.accepted_by_input,
                "peak_accepted_per_second": self.peak_accepted_per_second(),
                "rate_limited": self._rate_limited,
                "bucket_refused": self._bucket_refused,
                "bucket_refusals": list(self._bucket_refusals),
                "server_errors": self._server_errors,
                "drops": self._drops,
                "slow_answers": self._slow,
                "errors_by_status": {str(k): v for k, v in sorted(self._errors_by_status.items())},
                "polls": self.polls,
                "downloads": self.downloads,
                "jobs": len(self.jobs),
                "submissions": [asdict(record) for record in self._records],
            }
