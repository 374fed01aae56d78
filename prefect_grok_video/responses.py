"""What the service's answers mean: HTTP answers and transport failures turned into this
package's errors (`prefect_grok_video.errors`), and bodies into request_ids and jobs.

Pure functions of a response or an exception, so the mapping reads in one place and is tested
without a network. Every text taken from an answer is redacted of the secrets given.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable
from typing import Any

import httpx
from pydantic import ValidationError

from prefect_grok_video.display import shown
from prefect_grok_video.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    GrokVideoError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ResponseFormatError,
    ServiceError,
    SubmitOutcomeUnknownError,
    UnknownModelError,
    redact,
)
from prefect_grok_video.models import VideoJob

__all__ = [
    "NOT_SENT",
    "api_error",
    "parse_job",
    "parse_request_id",
    "parse_retry_after",
    "transport_error",
]

#: Errors raised before a request's first byte left: it can be sent again safely.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
            httpx.WriteTimeout, httpx.UnsupportedProtocol)  # fmt: skip


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _service_message(response: httpx.Response) -> tuple[str, str | None]:
    """(message, code) from an error response, whatever shape the service used."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:300] or response.reason_phrase or "no message"), None
    if not isinstance(body, dict):
        return str(body)[:300], None
    error, code = body.get("error"), body.get("code")
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or code
        error = error.get("message")
    message = error or body.get("message") or body.get("detail") or response.reason_phrase
    return str(message)[:500], (str(code) if code is not None else None)


def api_error(
    response: httpx.Response,
    operation: str,
    request_id: str | None,
    secrets: Iterable[str],
) -> GrokVideoError:
    """The error for an HTTP error answer to `operation` (`submit` or `poll`)."""
    secrets = list(secrets)
    message, code = _service_message(response)
    message = redact(message, secrets)
    code = redact(code, secrets) if code else None
    status = response.status_code
    text = f"{operation} refused with HTTP {status}: {message}"
    context: dict[str, Any] = {"status_code": status, "code": code, "request_id": request_id}
    mentions_model = "model" in f"{code} {message}".lower()
    if status in (401, 403):
        return AuthenticationError(
            f"{text} (check GROK_VIDEO_API_KEY or the credentials block, and the key's "
            "permissions)",
            **context,
        )
    if status == 429:
        return RateLimitError(
            text, retry_after=parse_retry_after(response.headers.get("Retry-After")), **context
        )
    if status == 504 and operation == "submit":
        return SubmitOutcomeUnknownError(
            f"{text}: a gateway gave up waiting, the job may have been created and billed; "
            "check before submitting again",
            **context,
        )
    if status >= 500:
        return ServiceError(text, **context)
    if operation == "submit" and (status == 404 or (status == 400 and mentions_model)):
        return UnknownModelError(
            f"{text} (check the model id and that it can do this operation)", **context
        )
    if status == 404:
        return NotFoundError(text, **context)
    if status in (400, 411, 413, 422):
        return InvalidRequestError(text, **context)
    return APIError(text, **context)


def transport_error(
    exc: httpx.TransportError,
    operation: str,
    request_id: str | None,
    *,
    base_url: str,
    secrets: Iterable[str],
) -> GrokVideoError:
    """The error for a request that got no answer: safe to send again only if never sent."""
    what = f"{type(exc).__name__}: {redact(str(exc), secrets)}"
    if isinstance(exc, NOT_SENT):
        return APIConnectionError(
            f"{operation}: could not reach {base_url} ({what})", request_id=request_id
        )
    if operation == "submit":
        return SubmitOutcomeUnknownError(
            f"submit was sent but no answer came ({what}); a job may have been created "
            "and billed: check before submitting again"
        )
    return APIConnectionError(f"{operation}: no answer ({what})", request_id=request_id)


def parse_request_id(response: httpx.Response) -> str:
    """The request_id of an accepted submit; `SubmitOutcomeUnknownError` if it has none."""
    try:
        request_id = response.json()["request_id"]
        if isinstance(request_id, str) and request_id:
            return request_id
    except (ValueError, KeyError, TypeError):
        pass
    raise SubmitOutcomeUnknownError(
        f"submit answered HTTP {response.status_code} without a request_id; a job may have "
        "been created and billed: check the provider's console before submitting again",
        status_code=response.status_code,
    )


def parse_job(response: httpx.Response, request_id: str) -> VideoJob:
    """The job a poll answered; `ResponseFormatError` (retryable) if the body is not one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        try:
            return VideoJob.model_validate({**body, "request_id": request_id})
        except ValidationError as exc:
            # Field names and rules only: the values may hold anything, even a key.
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    else:
        problem = "not a JSON object"
    raise ResponseFormatError(
        f"poll answered HTTP {response.status_code} with a body that is not a job "
        f"({shown(problem, 120)!r})",
        status_code=response.status_code,
        request_id=request_id,
    )
