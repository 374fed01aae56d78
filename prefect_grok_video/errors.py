"""The errors this package raises, as one hierarchy rooted at `GrokVideoError`.

Every error says whether trying the same thing again can help (`retryable`) and carries what is
known of where it happened: `status_code`, the service's error `code`, the job's `request_id`
and, once the pipeline knows it, the manifest `row_id`. Messages never contain the API key:
anything taken from a response passes through `redact` first.

    GrokVideoError
    ├── ConfigurationError          no API key, bad base URL: fix the configuration
    ├── InputError                  a `video`/`prompt`/`duration` value that cannot be sent
    │   └── PreflightError          an input video that breaks the rules (MP4, codec, 2–15 s)
    ├── ManifestError               a manifest that cannot be read at all (not found, malformed)
    ├── APIError                    the service answered with an HTTP error
    │   ├── AuthenticationError     401/403: wrong key or missing permission
    │   ├── UnknownModelError       the model id does not exist
    │   ├── InvalidRequestError     400/422: the request was refused as invalid
    │   ├── NotFoundError           404 on a poll: no such request_id
    │   ├── RateLimitError          429 (retryable), with `retry_after`
    │   └── ServiceError            5xx (retryable)
    ├── APIConnectionError          the service could not be reached, nothing was sent (retryable)
    ├── ResponseFormatError         an answer that is not the JSON the contract promises
    ├── SubmitOutcomeUnknownError   a submit went out, no answer came: a job may exist (final)
    ├── PollTimeoutError            a job was still pending when the wait's deadline passed
    ├── JobFailedError              a job ended without a video (retryable for two error codes)
    ├── DownloadError               a result could not be fetched or stored
    └── RunFailedError              a run finished, but not every row succeeded (`.result`)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "RETRYABLE_JOB_ERROR_CODES",
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "ConfigurationError",
    "DownloadError",
    "GrokVideoError",
    "InputError",
    "InvalidRequestError",
    "JobFailedError",
    "ManifestError",
    "NotFoundError",
    "PollTimeoutError",
    "PreflightError",
    "RateLimitError",
    "ResponseFormatError",
    "RunFailedError",
    "ServiceError",
    "SubmitOutcomeUnknownError",
    "UnknownModelError",
    "redact",
]

#: Asynchronous error codes after which a *new* submission may succeed (API.md, section 3).
RETRYABLE_JOB_ERROR_CODES = frozenset({"service_unavailable", "internal_error"})

#: What a job's error code means for the user: the fix, from API.md's error table.
JOB_ERROR_ADVICE = {
    "invalid_argument": "fix the input (duration, video, prompt length or moderation); "
    "never retry it as-is",
    "permission_denied": "check the API key's permissions; never retry it as-is",
    "failed_precondition": "the model or settings do not support this; change them",
    "service_unavailable": "the video service is overloaded; retry later with a new submission",
    "internal_error": "server-side error; retry, and report the request_id if it persists",
    "expired": "the job expired before it finished; submit it again",
    "moderated": "the generated video did not pass moderation; change the prompt or the video",
}

_REDACTED = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret in `text` (a secret shorter than 4 chars is kept)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    return text


class GrokVideoError(Exception):
    """Base class of every error raised by prefect-grok-video."""

    #: Whether the *same* operation may succeed if tried again later.
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        row_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.row_id = row_id

    def __str__(self) -> str:
        context = [
            f"{name}={value}"
            for name, value in (
                ("row", self.row_id),
                ("request_id", self.request_id),
                ("status", self.status_code),
                ("code", self.code),
            )
            if value is not None
        ]
        return f"{self.message} [{', '.join(context)}]" if context else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(
        self,
    ) -> tuple[Any, ...]:  # keeps keyword-only context through pickling (Prefect persists errors)
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[GrokVideoError], message: str, state: dict[str, Any]) -> GrokVideoError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigurationError(GrokVideoError):
    """The client cannot be built as configured (for example no API key is set)."""


class InputError(GrokVideoError):
    """An input value cannot be sent to the service; `field` names it and the message says why."""

    def __init__(self, message: str, *, field: str = "video", **context: Any) -> None:
        super().__init__(message, **context)
        self.field = field

    def __str__(self) -> str:
        where = f"row {self.row_id}, " if self.row_id is not None else ""
        return f"{where}{self.field}: {self.message}"


class PreflightError(InputError):
    """An input video breaks one of the service's rules; `rule` names it, `found` what was seen."""

    def __init__(
        self, message: str, *, rule: str, found: str | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.rule = rule
        self.found = found


class ManifestError(GrokVideoError):
    """The manifest as a whole cannot be read: not found, unsupported format, malformed
    JSON/YAML/CSV, not a list of rows. A bad row is not this: it is reported with its row."""


class APIError(GrokVideoError):
    """The service answered a request with an HTTP error status."""


class AuthenticationError(APIError):
    """401/403: the API key is wrong, revoked, or may not do this. Not retryable."""


class UnknownModelError(APIError):
    """The requested model does not exist on this service. Not retryable."""


class InvalidRequestError(APIError):
    """400/422: the service refused the request as invalid. Not retryable as-is."""


class NotFoundError(APIError):
    """404 on a poll: the service knows no job with this request_id."""


class RateLimitError(APIError):
    """429: too many requests. Retryable after `retry_after` seconds when the service says."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class ServiceError(APIError):
    """5xx: the service failed to answer. Retryable."""

    retryable = True


class APIConnectionError(GrokVideoError):
    """The service could not be reached; the request was not sent. Retryable."""

    retryable = True


class ResponseFormatError(GrokVideoError):
    """The service answered 2xx with a body that is not the promised JSON."""

    retryable = True


class SubmitOutcomeUnknownError(GrokVideoError):
    """A submit was sent but no usable answer came back: a paid job may exist.

    Not retryable: submitting again could create and bill a second job. Find the job in the
    provider's console, or resubmit deliberately (for example with `refresh`).
    """


class PollTimeoutError(GrokVideoError):
    """The job was still pending when the wait's deadline passed. The job may still finish:
    wait again with the same `request_id` rather than submitting again."""

    def __init__(
        self, message: str, *, elapsed: float, last_status: str | None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.elapsed = elapsed
        self.last_status = last_status


class JobFailedError(GrokVideoError):
    """A job ended without a usable video: `failed`, `expired`, or refused by moderation.

    `code` is the service's error code (or `expired` / `moderated`); retryable exactly for
    `service_unavailable` and `internal_error`, and then only as a *new* submission.
    """

    def __init__(self, message: str, *, code: str, **context: Any) -> None:
        super().__init__(message, code=code, **context)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.code in RETRYABLE_JOB_ERROR_CODES

    @property
    def advice(self) -> str:
        """What to do about it, from API.md's error table."""
        return JOB_ERROR_ADVICE.get(self.code or "", "see the service's message")


class DownloadError(GrokVideoError):
    """A generated video could not be downloaded or stored. Retryable unless `retryable` says not
    (a refused URL scheme or an oversize file will not change)."""

    def __init__(self, message: str, *, retryable: bool = True, **context: Any) -> None:
        super().__init__(message, **context)
        self.retryable = retryable


class RunFailedError(GrokVideoError):
    """A run finished, every row reached its outcome, but not every row succeeded.

    The flows fail with it (`fail_on_item_error=True`), after downloading what succeeded and
    publishing the report; `result` is the flow's full answer (a `RunReport`, or an
    `ItemResult` for `extend_video`), so nothing about the run is lost to the caller.
    """

    def __init__(self, message: str, *, result: object = None, **context: Any) -> None:
        # `result` is None when the error was read back from result storage, which keeps only
        # its message: the run's report is then `<output>/report.json` (and its artifacts).
        super().__init__(message, **context)
        self.result = result
