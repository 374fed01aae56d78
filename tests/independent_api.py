"""An independent implementation of API.md, written from the contract alone with the stdlib.

It shares no code or assumptions with the project's own emulator and deliberately makes other
choices a real deployment might make: the API lives under `/v1` (not `/grok/v1`), request ids
are UUIDs, errors use an OpenAI-style `{"error": {"message", "type"}}` body, a 401 echoes the
presented key, 429s carry `Retry-After` as an HTTP date or as seconds, answers carry fields the
contract does not name, and results are served from a signed `/cdn/<id>.mp4` URL with chunked
transfer encoding to callers that send no `Authorization` header.

Request bodies are parsed as they arrive: the `video` string of a submission is base64-decoded
and hashed chunk by chunk, so a body of hundreds of MB is never held in memory.

Job outcomes are chosen by keywords in the prompt:

============  ==============================================================================
keyword       effect
============  ==============================================================================
MODERATE      `done` with `respect_moderation: false` and an empty `url`
FAIL:<code>   `failed` with `error.code` = <code> (e.g. `FAIL:service_unavailable`)
EXPIRE        `expired`
QUEUED        the first answered poll says `"status": "queued"` (a status API.md does not list)
POLL429       the first poll of the job is refused with 429 and a `Retry-After`
PROGRESS      pending answers carry a float `progress` (default for odd submissions)
NOPROGRESS    pending answers carry no `progress` field (default for even submissions)
NOUSAGE       terminal answers carry no `usage`
============  ==============================================================================

Faults are injected on request (constructor options, all off by default). Each decision is a
seeded hash of what it is about (the fault, the input, which job or attempt of that input, which
poll of that job), not a draw from a shared random stream, so the same seed picks the same rows
however the client's requests interleave:

===========================  =====================================================================
option                       fault
===========================  =====================================================================
p_submit_5xx                 a submission is answered 500, 502 or 503 before any job is made
p_submit_429                 a submission is refused with 429 and `Retry-After` (no job)
storm_429=(n, s)             once n jobs were accepted, every submission for s seconds gets 429
                             with `Retry-After` pointing at the storm's end
p_drop_after_accept          the job is created (and billed), then the connection is closed with
                             no answer or half of one
p_first_attempt_unavailable  the first job of an input fails with `service_unavailable`
p_poll_5xx                   a poll of a job is answered 500 or 503
slow_poll_seconds            polls (a `p_slow_poll` share of them) are answered this much later
===========================  =====================================================================

`records()` lists every accepted submission as a dict with `request_id`, `input_key` (the URL or
file id as sent, or `sha256:<hex>` of a data URL's decoded bytes), `outcome` (`done`,
`moderated`, `failed`, `expired`: decided when the job is made), `error_code`, `dropped` and
`accepted_at` (`time.monotonic()`); `faults` counts what was injected.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import io
import json
import math
import re
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import av

__all__ = ["IndependentAPI", "Job", "Submission", "make_h264_mp4"]

RetryAfterStyle = Literal["seconds", "date", "alternate"]

_READ_CHUNK = 64 * 1024
_SPECIAL = re.compile(rb'["\\]')
_WHITESPACE = b" \t\r\n"
_SCALAR_END = b",} \t\r\n"
_MAX_SMALL_FIELD = 64 * 1024
_MAX_REFERENCE = 8 * 1024
_FAIL_CODE = re.compile(r"FAIL:([a-z_]+)")
_FAIL_MESSAGES = {
    "invalid_argument": "The input video could not be processed.",
    "permission_denied": "This key is not allowed to extend videos.",
    "failed_precondition": "The model does not support extension with these settings.",
    "service_unavailable": "The video service is overloaded, try again later.",
    "internal_error": "Something went wrong on our side.",
}


@functools.lru_cache(maxsize=16)
def make_h264_mp4(seconds: float = 2.0, *, fps: int = 10, size: int = 64, shade: int = 0) -> bytes:
    """Encode a small H.264 MP4 of flat, changing colours in memory and return its bytes."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for index in range(round(seconds * fps)):
            frame = av.VideoFrame(size, size, "yuv420p")
            for number, plane in enumerate(frame.planes):
                plane.update(bytes([(shade + index * 7 + number * 60) % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    return buffer.getvalue()


class _BadRequest(ValueError):
    """A submission body the server refuses with 400."""


class _VideoSink:
    """Receives the unescaped `video` string piece by piece; decodes and hashes data URLs."""

    def __init__(self) -> None:
        self.kind: Literal["data_url", "reference"] | None = None
        self.media_type = ""
        self.size = 0
        self.magic = b""
        self.reference = ""
        self._head = bytearray()
        self._in_payload = False
        self._carry = b""
        self._padded = False
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 of the decoded content of a data URL (None for references)."""
        return self._digest.hexdigest() if self.kind == "data_url" else None

    def write(self, piece: bytes) -> None:
        """Take the next piece of the string's text."""
        if self._in_payload:
            self._decode(piece)
            return
        self._head += piece
        if self.kind is None and len(self._head) >= 5:
            self.kind = "data_url" if self._head[:5].lower() == b"data:" else "reference"
        if self.kind == "data_url":
            comma = self._head.find(b",")
            if comma < 0:
                if len(self._head) > 256:
                    raise _BadRequest("video: the data URL header is too long")
                return
            header, rest = bytes(self._head[5:comma]), bytes(self._head[comma + 1 :])
            params = header.decode("ascii", "replace").split(";")
            self.media_type = params[0].strip().lower()
            if "base64" not in (p.strip().lower() for p in params[1:]):
                raise _BadRequest("video: only base64 data URLs are supported")
            self._head = bytearray()
            self._in_payload = True
            self._decode(rest)
        elif self.kind == "reference" and len(self._head) > _MAX_REFERENCE:
            raise _BadRequest("video: the reference is too long")

    def close(self) -> None:
        """The string ended: check that what came was complete."""
        if self.kind is None:
            self.kind = "reference"
        if self.kind == "reference":
            self.reference = self._head.decode("utf-8", "replace")
            return
        if not self._in_payload:
            raise _BadRequest("video: the data URL has no ',' before its data")
        if self._carry:
            raise _BadRequest("video: the base64 data is not a multiple of 4 characters")

    def _decode(self, piece: bytes) -> None:
        """Base64-decode what whole 4-character groups `piece` completes; hash the bytes."""
        data = self._carry + piece
        cut = len(data) - len(data) % 4
        self._carry = data[cut:]
        if not cut:
            return
        if self._padded:
            raise _BadRequest("video: base64 data continues after its padding")
        try:
            decoded = base64.b64decode(data[:cut], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _BadRequest(f"video: invalid base64 data ({exc})") from None
        self._padded = data[cut - 1 : cut] == b"="
        if len(self.magic) < 12:
            self.magic += decoded[: 12 - len(self.magic)]
        self.size += len(decoded)
        self._digest.update(decoded)


class _StreamingBody:
    """An incremental parser of a flat JSON object; its `video` string goes to a `_VideoSink`."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.video: _VideoSink | None = None
        self._state = "start"
        self._pending = b""
        self._key = ""
        self._raw = bytearray()
        self._sink: _VideoSink | None = None

    def feed(self, chunk: bytes) -> None:
        """Parse the next bytes of the body."""
        data = self._pending + chunk if self._pending else chunk
        self._pending = b""
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state in ("key", "string"):
                i = self._string(data, i)
                if i < 0:
                    return
                continue
            if state == "scalar":
                j = i
                while j < n and data[j] not in _SCALAR_END:
                    j += 1
                self._raw += data[i:j]
                if len(self._raw) > 64:
                    raise _BadRequest("a number or literal is too long")
                if j < n:
                    self._end_scalar()
                i = j
                continue
            byte = data[i]
            if byte in _WHITESPACE:
                i += 1
                continue
            if state == "start" and byte == ord("{"):
                self._state = "first_key"
            elif state in ("first_key", "key_start") and byte == ord('"'):
                self._state, self._raw = "key", bytearray()
            elif (state == "first_key" or state == "after_value") and byte == ord("}"):
                self._state = "end"
            elif state == "colon" and byte == ord(":"):
                self._state = "value"
            elif state == "value" and byte == ord('"'):
                self._state, self._raw = "string", bytearray()
                self._sink = _VideoSink() if self._key == "video" else None
            elif state == "value" and byte not in b"{[]},:":
                self._state, self._raw = "scalar", bytearray()
                continue
            elif state == "after_value" and byte == ord(","):
                self._state = "key_start"
            elif state == "value":
                raise _BadRequest(f"{self._key}: nested values are not accepted")
            else:
                raise _BadRequest(f"malformed JSON body (unexpected {chr(byte)!r})")
            i += 1

    def finish(self) -> None:
        """The body ended: it must have been exactly one complete object."""
        if self._state == "scalar":
            self._end_scalar()
        if self._state != "end" or self._pending:
            raise _BadRequest("malformed JSON body (it ends before the object does)")

    def _string(self, data: bytes, i: int) -> int:
        """Consume string text from `i`; the index after the string, or -1 if more is needed."""
        n = len(data)
        while True:
            match = _SPECIAL.search(data, i)
            if match is None:
                self._emit(data[i:])
                return n
            j = match.start()
            if j > i:
                self._emit(data[i:j])
            if data[j] == ord('"'):
                self._close_string()
                return j + 1
            need = 6 if j + 1 < n and data[j + 1] == ord("u") else 2
            if j + need > n:
                self._pending = data[j:]
                return -1
            escape = data[j : j + need]
            if self._sink is not None:
                try:
                    text = json.loads(b'"' + escape + b'"')
                except ValueError:
                    raise _BadRequest("video: invalid escape in the string") from None
                self._sink.write(text.encode("utf-8", "surrogatepass"))
            else:
                self._emit(escape)
            i = j + need

    def _emit(self, piece: bytes) -> None:
        """Pass string text to the video sink, or keep it (bounded) for a small value."""
        if self._sink is not None:
            self._sink.write(piece)
            return
        self._raw += piece
        if len(self._raw) > _MAX_SMALL_FIELD:
            raise _BadRequest(f"{self._key or 'a key'}: the value is too long")

    def _close_string(self) -> None:
        """A key or a string value ended."""
        try:
            text = json.loads(b'"' + bytes(self._raw) + b'"') if self._sink is None else None
        except ValueError:
            raise _BadRequest("malformed JSON string") from None
        if self._state == "key":
            if text in self.fields or (text == "video" and self.video is not None):
                raise _BadRequest(f"duplicate field {text!r}")
            self._key, self._state = str(text), "colon"
            return
        if self._sink is not None:
            self._sink.close()
            self.video, self._sink = self._sink, None
        else:
            self.fields[self._key] = text
        self._state = "after_value"

    def _end_scalar(self) -> None:
        """A number, boolean or null ended."""
        try:
            self.fields[self._key] = json.loads(bytes(self._raw))
        except ValueError:
            raise _BadRequest(f"{self._key}: not a JSON value") from None
        self._state = "after_value"


@dataclass
class Submission:
    """What one accepted submission carried, as the server saw it."""

    request_id: str
    model: str
    prompt: str
    duration: int
    video_kind: str
    video_reference: str | None
    video_sha256: str | None
    video_size: int
    content_length: int
    body_bytes_read: int
    #: The URL or file id as sent, or `sha256:<hex>` of a data URL's decoded bytes.
    input_key: str = ""
    #: Which job of this input it is (0 for the first).
    ordinal: int = 0
    #: What the job ends as: `done`, `moderated`, `failed` or `expired`, fixed when it is made.
    outcome: str = "done"
    error_code: str | None = None
    #: Whether the answer to this submission was dropped (the job exists all the same).
    dropped: bool = False
    #: `time.monotonic()` when the job was made.
    accepted_at: float = 0.0


@dataclass
class Job:
    """A job and what its polls have seen."""

    submission: Submission
    created: float
    sequence: int
    polls: int = 0
    queued_shown: bool = False
    #: Epoch time before which polls are refused (POLL429), once a refusal was sent.
    blocked_until: float | None = None
    statuses: list[str] = field(default_factory=list)
    #: Poll requests that reached this job, answered or not (numbers the fault decisions).
    poll_requests: int = 0


class _Server(ThreadingHTTPServer):
    """The HTTP server, quiet about clients that vanish mid-answer (killed runs do)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore a connection the client dropped; report anything else as usual."""
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):
            super().handle_error(request, client_address)


class IndependentAPI:
    """A stdlib HTTP server implementing API.md differently from the project, as a context manager.

    `base_url` is `http://127.0.0.1:<port>/v1`; `api_key` is what it accepts. Submissions are
    rate limited by a token bucket (`rate_capacity` tokens, `rate_per_second` refill); a refused
    one gets `Retry-After` in the `retry_after` style ("alternate" switches each time). The
    `p_*`, `storm_429` and `slow_poll_seconds` options inject faults (see the module doc).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        latency: float = 0.3,
        models: frozenset[str] = frozenset({"grok-imagine-video"}),
        rate_capacity: float = 100.0,
        rate_per_second: float = 1.0,
        retry_after: RetryAfterStyle = "alternate",
        max_body_bytes: int = 1024 * 1024 * 1024,
        result_seconds: float = 2.0,
        seed: int = 0,
        p_submit_5xx: float = 0.0,
        p_submit_429: float = 0.0,
        storm_429: tuple[int, float] | None = None,
        p_drop_after_accept: float = 0.0,
        p_first_attempt_unavailable: float = 0.0,
        p_poll_5xx: float = 0.0,
        slow_poll_seconds: float = 0.0,
        p_slow_poll: float = 1.0,
    ) -> None:
        self.api_key = api_key or f"indep-{secrets.token_hex(16)}"
        self.latency = latency
        self.models = models
        self.rate_capacity = rate_capacity
        self.rate_per_second = rate_per_second
        self.retry_after = retry_after
        self.max_body_bytes = max_body_bytes
        self.result = make_h264_mp4(result_seconds)
        self.result_sha256 = hashlib.sha256(self.result).hexdigest()
        self.jobs: dict[str, Job] = {}
        self.submissions: list[Submission] = []
        self.submit_attempts = 0
        self.rate_limited = 0
        self.unauthorized = 0
        self.polls = 0
        self.downloads = 0
        self.cdn_refused = 0
        self.retry_after_sent: list[str] = []
        self.error_bodies: list[dict[str, Any]] = []
        self.seed = seed
        self.p_submit_5xx = p_submit_5xx
        self.p_submit_429 = p_submit_429
        self.storm_429 = storm_429
        self.p_drop_after_accept = p_drop_after_accept
        self.p_first_attempt_unavailable = p_first_attempt_unavailable
        self.p_poll_5xx = p_poll_5xx
        self.slow_poll_seconds = slow_poll_seconds
        self.p_slow_poll = p_slow_poll
        #: How many of each fault were injected, by name.
        self.faults: Counter[str] = Counter()
        #: `time.monotonic()` when the 429 storm ends, once it started.
        self.storm_until: float | None = None
        self._attempts_of: Counter[str] = Counter()
        self._tokens = rate_capacity
        self._refilled = time.monotonic()
        self._date_next = retry_after != "seconds"
        self._signing_key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def accepted(self) -> int:
        """How many submissions became jobs."""
        return len(self.submissions)

    def records(self) -> list[dict[str, Any]]:
        """Every accepted submission as a dict (the records `invariants.check_run` reads)."""
        with self._lock:
            return [asdict(submission) for submission in self.submissions]

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:<port>`."""
        assert self._server is not None, "the server is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """The API's base URL (note the `/v1` prefix)."""
        return f"{self.origin}/v1"

    def __enter__(self) -> IndependentAPI:
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- behaviour -----------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> tuple[bool, str | None]:
        """(whether the bearer key is right, the token presented)."""
        if not header:
            return False, None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self.api_key.encode()
        )
        return ok, token

    def _take_token(self) -> str | None:
        """Spend a rate-limit token; when none is left, the `Retry-After` value to send."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(
                self.rate_capacity, self._tokens + (now - self._refilled) * self.rate_per_second
            )
            self._refilled = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            wait = (1.0 - self._tokens) / self.rate_per_second
            self.rate_limited += 1
            return self._retry_after_value(wait)[0]

    def _retry_after_value(self, wait: float) -> tuple[str, float]:
        """(`Retry-After` for `wait` seconds rounded up in the configured style, its epoch time)."""
        as_date = self._date_next
        if self.retry_after == "alternate":
            self._date_next = not self._date_next
        now = time.time()
        if as_date:
            until = float(math.ceil(now + wait))
            value = email.utils.formatdate(until, usegmt=True)
        else:
            seconds = max(1, math.ceil(wait))
            until, value = now + seconds, str(seconds)
        self.retry_after_sent.append(value)
        return value, until

    def _sign(self, request_id: str, expires: int) -> str:
        """The signature of a CDN link for `request_id` valid until `expires` (epoch seconds)."""
        message = f"{request_id}:{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()[:32]

    def result_url(self, request_id: str) -> str:
        """The signed CDN URL of a job's result, valid for 24 h."""
        expires = int(time.time()) + 24 * 3600
        signature = self._sign(request_id, expires)
        return f"{self.origin}/cdn/{request_id}.mp4?exp={expires}&sig={signature}"

    # -- faults --------------------------------------------------------------------------------

    def _chance(self, *about: object) -> float:
        """A number in [0, 1) fixed by the seed and `about` (what the decision concerns)."""
        text = "\x1f".join(map(str, (self.seed, *about))).encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2.0**64

    def submit_fault(self, input_key: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """The refusal (status, body, headers) a valid submission gets instead of a job, if any."""
        with self._lock:
            attempt = self._attempts_of[input_key]
            self._attempts_of[input_key] += 1
            now = time.monotonic()
            if (
                self.storm_429 is not None
                and self.storm_until is None
                and len(self.submissions) >= self.storm_429[0]
            ):
                self.storm_until = now + self.storm_429[1]
            if self.storm_until is not None and now < self.storm_until:
                fault, retry = "storm_429", self._retry_after_value(self.storm_until - now)[0]
            elif self._chance("submit_429", input_key, attempt) < self.p_submit_429:
                fault, retry = "submit_429", self._retry_after_value(1.0)[0]
            elif self._chance("submit_5xx", input_key, attempt) < self.p_submit_5xx:
                fault, retry = "submit_5xx", None
            else:
                return None
            self.faults[fault] += 1
            if retry is not None:
                self.rate_limited += 1
                message = "Rate limit reached for grok-imagine-video, retry later."
                return 429, _error(message, "rate_limit_error"), {"Retry-After": retry}
        status = (500, 502, 503)[int(self._chance("5xx_status", input_key, attempt) * 3)]
        return status, _error(f"Upstream error {status}, no job was created.", "server_error"), {}

    def drop_answer(self, submission: Submission) -> bool:
        """Whether the answer to this accepted submission is dropped (and count it if so)."""
        key, ordinal = submission.input_key, submission.ordinal
        if self._chance("drop", key, ordinal) >= self.p_drop_after_accept:
            return False
        with self._lock:
            submission.dropped = True
            self.faults["drop_after_accept"] += 1
        return True

    def poll_fault(self, job: Job) -> tuple[int | None, float]:
        """(a 5xx status to answer a poll of `job` with, or None; seconds to delay the answer)."""
        with self._lock:
            number = job.poll_requests
            job.poll_requests += 1
        about = (job.submission.input_key, job.submission.ordinal, number)
        delay = 0.0
        if self.slow_poll_seconds > 0 and self._chance("slow_poll", *about) < self.p_slow_poll:
            delay = self.slow_poll_seconds
        status = None
        if self._chance("poll_5xx", *about) < self.p_poll_5xx:
            status = 500 if self._chance("poll_5xx_status", *about) < 0.5 else 503
        with self._lock:
            if delay:
                self.faults["slow_poll"] += 1
            if status is not None:
                self.faults["poll_5xx"] += 1
        return status, delay

    def _plan(self, prompt: str, input_key: str, ordinal: int) -> tuple[str, str | None]:
        """(outcome, error code) of a new job: the injected failure, else the prompt's keywords."""
        if ordinal == 0 and (
            self._chance("first_unavailable", input_key) < self.p_first_attempt_unavailable
        ):
            self.faults["first_attempt_unavailable"] += 1
            return "failed", "service_unavailable"
        failure = _FAIL_CODE.search(prompt)
        if failure:
            return "failed", failure.group(1)
        if "EXPIRE" in prompt:
            return "expired", None
        return ("moderated" if "MODERATE" in prompt else "done"), None

    # -- jobs ----------------------------------------------------------------------------------

    def create_job(self, fields: dict[str, Any], video: _VideoSink, length: int) -> Submission:
        """Record an accepted submission as a new job."""
        input_key = _input_key(video)
        with self._lock:
            ordinal = sum(1 for s in self.submissions if s.input_key == input_key)
            outcome, error_code = self._plan(fields["prompt"], input_key, ordinal)
            submission = Submission(
                request_id=str(uuid.uuid4()),
                model=fields["model"],
                prompt=fields["prompt"],
                duration=fields.get("duration", 6),
                video_kind=video.kind or "reference",
                video_reference=video.reference if video.kind == "reference" else None,
                video_sha256=video.sha256,
                video_size=video.size,
                content_length=length,
                body_bytes_read=length,
                input_key=input_key,
                ordinal=ordinal,
                outcome=outcome,
                error_code=error_code,
                accepted_at=time.monotonic(),
            )
            self.submissions.append(submission)
            self.jobs[submission.request_id] = Job(
                submission, time.monotonic(), sequence=len(self.submissions)
            )
            return submission

    def job_answer(self, job: Job) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status code, body, headers) for a poll of `job`."""
        prompt, model = job.submission.prompt, job.submission.model
        with self._lock:
            job.polls += 1
            now = time.time()
            if "POLL429" in prompt and (job.blocked_until is None or now < job.blocked_until):
                # Refuse the first poll, then every poll that comes before the time promised.
                self.rate_limited += 1
                if job.blocked_until is None:
                    retry, job.blocked_until = self._retry_after_value(1.0)
                else:
                    retry = str(max(1, math.ceil(job.blocked_until - now)))
                body = _error("Too many polls for this job, slow down.", "rate_limit_error")
                return 429, body, {"Retry-After": retry}
            if "QUEUED" in prompt and not job.queued_shown:
                job.queued_shown = True
                job.statuses.append("queued")
                return 200, {"status": "queued", "model": model, "queue_position": 3}, {}
        elapsed = time.monotonic() - job.created
        if elapsed < self.latency:
            body: dict[str, Any] = {"status": "pending", "model": model}
            wants_progress = "PROGRESS" in prompt.replace("NOPROGRESS", "")
            if wants_progress or ("NOPROGRESS" not in prompt and job.sequence % 2 == 1):
                body["progress"] = round(max(0.5, min(99.0, 100.0 * elapsed / self.latency)), 1)
            job.statuses.append("pending")
            return 200, body, {}
        body = self._terminal(job)
        job.statuses.append(body["status"])
        return 200, body, {}

    def _terminal(self, job: Job) -> dict[str, Any]:
        """The body of a finished job, its outcome chosen by the prompt's keywords."""
        sub = job.submission
        created_at = datetime.fromtimestamp(
            time.time() - (time.monotonic() - job.created), timezone.utc
        )
        body: dict[str, Any] = {
            "request_id": sub.request_id,
            "model": sub.model,
            "created_at": created_at.isoformat(),
        }
        usage = {"cost_in_usd_ticks": sub.duration * 500_000_000, "billed_seconds": sub.duration}
        if "NOUSAGE" not in sub.prompt:
            body["usage"] = usage
        if sub.outcome == "failed":
            code = sub.error_code or "internal_error"
            message = _FAIL_MESSAGES.get(code, f"The job failed ({code}).")
            return {"status": "failed", **body, "error": {"code": code, "message": message}}
        if sub.outcome == "expired":
            return {"status": "expired", **body}
        moderated = sub.outcome == "moderated"
        video = {
            "url": "" if moderated else self.result_url(sub.request_id),
            "duration": float(sub.duration) + 3.0,
            "respect_moderation": not moderated,
            "width": 1280,
            "height": 720,
            "fps": 24.0,
            "mime_type": "video/mp4",
        }
        return {"status": "done", **body, "video": video}

    def cdn_allows(self, request_id: str, query: str) -> int | None:
        """None if the signed URL is valid for a finished job, else the status to refuse with."""
        job = self.jobs.get(request_id)
        if job is None or "done" not in job.statuses or job.submission.outcome != "done":
            return 404
        params = parse_qs(query)
        try:
            expires = int(params["exp"][0])
            signature = params["sig"][0]
        except (KeyError, ValueError, IndexError):
            return 403
        if expires < time.time() or not hmac.compare_digest(
            signature, self._sign(request_id, expires)
        ):
            return 403
        return None


def _input_key(video: _VideoSink) -> str:
    """The input as `records()` name it: the reference as sent, or `sha256:<hex>` of the data."""
    if video.kind == "data_url":
        return f"sha256:{video.sha256}"
    return video.reference


def _error(message: str, kind: str = "invalid_request_error", **extra: Any) -> dict[str, Any]:
    """An OpenAI-style error body (not xAI's `{"code", "error"}`)."""
    return {"error": {"message": message, "type": kind, **extra}}


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the `IndependentAPI` set as the class attribute `api`."""

    api: IndependentAPI
    protocol_version = "HTTP/1.1"
    server_version = "independent-api/0.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read counters, not logs."""

    # -- helpers -------------------------------------------------------------------------------

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        """Answer with a JSON body and an exact Content-Length."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        if status >= 400:
            self.api.error_bodies.append(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Request-Trace", uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _read_into(self, length: int, parser: _StreamingBody | None) -> int:
        """Read exactly `length` body bytes (feeding `parser` until it errs); bytes read."""
        remaining, read, error = length, 0, None
        while remaining:
            chunk = self.rfile.read(min(_READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            read += len(chunk)
            if parser is not None and error is None:
                try:
                    parser.feed(chunk)
                except _BadRequest as exc:
                    error = exc
        if error is not None:
            raise error
        return read

    def _unauthorized(self) -> bool:
        """Answer 401 unless the bearer key is right; whether it answered."""
        ok, token = self.api._authorized(self.headers.get("Authorization"))
        if ok:
            return False
        with self.api._lock:
            self.api.unauthorized += 1
        if token is None:
            message = "Missing bearer authentication in header."
        else:
            message = f"Incorrect API key provided: {token}. Check the key on your dashboard."
        self._send_json(401, _error(message), {"WWW-Authenticate": 'Bearer realm="v1"'})
        return True

    # -- routes --------------------------------------------------------------------------------

    def do_POST(self) -> None:
        """`POST /v1/videos/extensions`."""
        path = urlsplit(self.path).path
        if path != "/v1/videos/extensions":
            self.close_connection = True
            self._send_json(404, _error(f"Unknown route POST {path}", "not_found_error"))
            return
        with self.api._lock:
            self.api.submit_attempts += 1
        declared = self.headers.get("Content-Length")
        if declared is None or not declared.isdigit():
            self.close_connection = True
            self._send_json(411, _error("A Content-Length header is required."))
            return
        length = int(declared)
        if length > self.api.max_body_bytes:
            self.close_connection = True
            self._send_json(413, _error(f"Request body over {self.api.max_body_bytes} bytes."))
            return
        if self._unauthorized():
            self._read_into(length, None)
            return
        retry_after = self.api._take_token()
        if retry_after is not None:
            self._read_into(length, None)
            message = "Rate limit reached for grok-imagine-video: 1 request per second."
            self._send_json(429, _error(message, "rate_limit_error"), {"Retry-After": retry_after})
            return
        parser = _StreamingBody()
        try:
            read = self._read_into(length, parser)
            if read < length:
                self.close_connection = True  # the client went away: no job, no answer
                return
            parser.finish()
            fields, video = self._validate(parser)
        except _BadRequest as exc:
            self._send_json(400, _error(str(exc)))
            return
        refusal = self.api.submit_fault(_input_key(video))
        if refusal is not None:
            self._send_json(*refusal)
            return
        submission = self.api.create_job(fields, video, length)
        if self.api.drop_answer(submission):
            self._drop(submission)
            return
        self._send_json(
            200,
            {
                "request_id": submission.request_id,
                "object": "video.extension",
                "created": int(time.time()),
            },
        )

    def _drop(self, submission: Submission) -> None:
        """Close the connection after the job was made: no answer at all, or half of one."""
        self.close_connection = True
        if self.api._chance("drop_style", submission.input_key, submission.ordinal) < 0.5:
            return
        payload = json.dumps({"request_id": submission.request_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])

    def _validate(self, parser: _StreamingBody) -> tuple[dict[str, Any], _VideoSink]:
        """The submission's fields and video, or `_BadRequest` for the first thing wrong."""
        fields, video = parser.fields, parser.video
        model = fields.get("model")
        if model is None:
            raise _BadRequest("model: required")
        if not isinstance(model, str) or model not in self.api.models:
            raise _BadRequest(
                f"The model `{model}` does not exist or your key does not have access to it."
            )
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _BadRequest("prompt: must be a non-empty string")
        duration = fields.setdefault("duration", 6)
        if isinstance(duration, bool) or not isinstance(duration, int) or not 2 <= duration <= 10:
            raise _BadRequest("duration: must be an integer from 2 to 10")
        for refused in ("aspect_ratio", "resolution"):
            if refused in fields:
                raise _BadRequest(f"{refused}: not accepted when extending a video")
        if video is None:
            raise _BadRequest("video: required")
        if video.kind == "data_url":
            if video.media_type not in ("video/mp4", "application/octet-stream"):
                raise _BadRequest(f"video: unsupported media type {video.media_type!r}")
            if video.magic[4:8] != b"ftyp":
                raise _BadRequest("video: the data is not an MP4 file")
        elif not video.reference.strip():
            raise _BadRequest("video: must not be empty")
        return fields, video

    def do_GET(self) -> None:
        """`GET /v1/videos/{id}` and `GET /cdn/{id}.mp4?exp=..&sig=..`."""
        parts = urlsplit(self.path)
        if parts.path.startswith("/cdn/"):
            self._cdn(parts.path[len("/cdn/") :], parts.query)
            return
        prefix = "/v1/videos/"
        if not parts.path.startswith(prefix) or "/" in parts.path[len(prefix) :]:
            self._send_json(404, _error(f"Unknown route GET {parts.path}", "not_found_error"))
            return
        if self._unauthorized():
            return
        request_id = parts.path[len(prefix) :]
        with self.api._lock:
            self.api.polls += 1
        job = self.api.jobs.get(request_id)
        if job is None:
            self._send_json(404, _error(f"No video request {request_id!r}.", "not_found_error"))
            return
        failure, delay = self.api.poll_fault(job)
        if delay:
            time.sleep(delay)
        if failure is not None:
            self._send_json(failure, _error("The service is unavailable, retry.", "server_error"))
            return
        status, body, headers = self.api.job_answer(job)
        self._send_json(status, body, headers)

    def _cdn(self, name: str, query: str) -> None:
        """Serve a result chunked, to callers without an Authorization header only."""
        if self.headers.get("Authorization") is not None:
            with self.api._lock:
                self.api.cdn_refused += 1
            self._send_json(400, _error("The CDN does not accept an Authorization header."))
            return
        request_id = name.removesuffix(".mp4")
        refusal = self.api.cdn_allows(request_id, query) if name.endswith(".mp4") else 404
        if refusal is not None:
            self._send_json(refusal, _error("No such object, or the link is not valid."))
            return
        with self.api._lock:
            self.api.downloads += 1
        data = self.api.result
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "private, max-age=86400")
        self.end_headers()
        for start in range(0, len(data), 1500):
            piece = data[start : start + 1500]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
