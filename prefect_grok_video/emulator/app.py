"""The emulator's HTTP surface: a Starlette app answering exactly as API.md describes.

Routes (the API under `/grok/v1`, like the real base URL's path):

    POST /grok/v1/videos/generations      submit a generation (bearer auth)
    POST /grok/v1/videos/edits            submit an edit (bearer auth)
    POST /grok/v1/videos/extensions       submit an extension (bearer auth)
    GET  /grok/v1/videos/{request_id}     poll any of them (bearer auth)
    GET  /grok/v1/_emulator/stats         counters as JSON (bearer auth)
    POST /grok/v1/_emulator/reset         forget jobs and counters (bearer auth)
    GET  /files/{request_id}.mp4?token=   the result, like a presigned URL (no auth)

A submit takes `video` and `image` as a string or as `{"url": ...}` (xAI's REST reference
shows objects, the platform's extension page a string); what each operation accepts is read
from `prefect_grok_video.operations`. A `video` that is one of this emulator's own result URLs
is that job's output: a chain's real input length is checked.

About 540 lines: one handler per endpoint of the service, each with the platform's quirks it
plays, so that the emulator reads like API.md's table of endpoints.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from prefect_grok_video.emulator.config import EmulatorConfig
from prefect_grok_video.emulator.jobs import (
    JOB_ERROR_MESSAGES,
    Job,
    Problem,
    ResolvedInput,
    check_request,
    frame_size,
    output_size,
    parse_directives,
    prompt_key,
    resolve_image,
    resolve_input,
    usage_ticks,
    within_input_length,
)
from prefect_grok_video.emulator.state import EmulatorState
from prefect_grok_video.operations import ACTIONS, Action, Limits, limits_for
from prefect_grok_video.settings import DEFAULT_MODEL

__all__ = ["API_PREFIX", "create_app", "quiet_deliberate_drops"]

API_PREFIX = "/grok/v1"
_THREAD_DECODE_CHARS = 64 * 1024
_SERVER_ERRORS = {
    500: ("internal_error", "Internal server error."),
    502: ("bad_gateway", "The upstream video service returned an invalid response."),
    503: ("service_unavailable", "The service is temporarily unavailable. Please retry."),
}
#: Set inside a deliberately cut-off answer so uvicorn's complaint about it can be muted.
_DROPPING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "grok_emulator_drop", default=False
)


class _DropFilter(logging.Filter):
    """Mutes uvicorn's error line about an answer the emulator cut off on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _DROPPING.get()


_DROP_FILTER = _DropFilter()


def quiet_deliberate_drops() -> None:
    """Install (once) the filter that keeps deliberate drops out of uvicorn's error log."""
    logger = logging.getLogger("uvicorn.error")
    if _DROP_FILTER not in logger.filters:
        logger.addFilter(_DROP_FILTER)


async def _slices(data: bytes, seconds: float, parts: int = 10) -> AsyncIterator[bytes]:
    """`data` in `parts` slices spread over `seconds` (a slow download)."""
    step = -(-len(data) // parts)
    for start in range(0, len(data), step):
        await anyio.sleep(seconds / parts)
        yield data[start : start + step]


class _CutOffResponse(Response):
    """A 200 that announces its full length, sends half of the body, then closes the connection."""

    def __init__(self, content: dict[str, Any]) -> None:
        self.full = json.dumps(content).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _DROPPING.set(True)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.full)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = self.full[: len(self.full) // 2]
        await send({"type": "http.response.body", "body": body, "more_body": True})
        # Returning now leaves the answer incomplete: uvicorn closes the connection.


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _prompt_of(body: bytes) -> str:
    """A submission's prompt as far as a glance finds it (what a refusal is recorded with)."""
    found = re.search(rb'"prompt"\s*:\s*"((?:[^"\\]|\\.){0,80})', body[:4096])
    return found.group(1).decode(errors="replace") if found else ""


def _media_url(value: Any) -> str | None:
    """The URL of a `video` or `image` field sent as a string or as `{"url": ...}` (other keys
    of the object are tolerated); None for any other shape."""
    if isinstance(value, dict):
        value = value.get("url")
    return value if isinstance(value, str) else None


def retry_after_value(seconds: float, fractional: bool) -> str:
    """Retry-After as whole seconds rounded up (at least 1), or as decimal seconds (ms steps)."""
    if not fractional:
        return str(max(1, math.ceil(seconds - 1e-9)))
    value = max(0.001, math.ceil(seconds * 1000 - 1e-6) / 1000)
    return f"{value:.3f}".rstrip("0").rstrip(".")


def create_app(
    state: EmulatorState | None = None, config: EmulatorConfig | None = None
) -> Starlette:
    """Build the ASGI app over `state` (a fresh one from `config` if not given)."""
    if state is None:
        state = EmulatorState(config)
    elif config is not None:
        state.reconfigure(config)

    def error(
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> JSONResponse:
        """An error answer in xAI's shape, counted; `close` when the body was left unread."""
        state.count_error(status)
        headers = dict(headers or {})
        if close:
            headers["Connection"] = "close"
        return JSONResponse({"code": code, "error": message}, status, headers=headers)

    def auth(request: Request, *, body_unread: bool = False) -> JSONResponse | None:
        """401/403 unless the request carries the configured bearer token."""
        config = state.config
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return error(
                401,
                "unauthenticated",
                "Missing API key: send an `Authorization: Bearer <API key>` header.",
                close=body_unread,
            )
        if token in config.forbidden_keys:
            return error(
                403,
                "permission_denied",
                "This API key does not have permission to use the video API.",
                close=body_unread,
            )
        if not hmac.compare_digest(token.encode(), config.api_key.encode()):
            return error(
                401,
                "unauthenticated",
                "Incorrect API key provided. Check the key, or create one in the console.",
                close=body_unread,
            )
        return None

    async def faults(kind: str, subject: str) -> JSONResponse | None:
        """The seeded slow answers, 5xx and 429 storms of a submit or a poll.

        Each is decided by the seed, the request's `subject` (a submit's body digest, a poll's
        request_id) and how many such requests came before, so concurrent clients meet the
        same faults whatever order their requests arrive in.
        """
        config = state.config
        key = (kind, subject, state.occurrence(kind, subject))
        slow = state.chance(config.p_slow, "slow", *key) or (
            kind == "poll" and state.chance(config.p_slow_poll, "slow-poll", *key)
        )
        if config.slow_response_seconds > 0 and slow:
            state.count_slow()
            await anyio.sleep(config.slow_response_seconds)
        if state.chance(getattr(config, f"p_{kind}_5xx"), "5xx", *key):
            status = state.choice(sorted(_SERVER_ERRORS))
            return error(status, *_SERVER_ERRORS[status])
        if state.chance(getattr(config, f"p_{kind}_429"), "429", *key):
            return rate_limited(config.storm_retry_after)
        return None

    def rate_limited(seconds: float) -> JSONResponse:
        value = retry_after_value(seconds, state.config.fractional_retry_after)
        return error(
            429,
            "rate_limit_exceeded",
            f"Too many requests: the rate limit of this model was exceeded. Retry after {value} s.",
            headers={"Retry-After": value},
        )

    async def read_body(request: Request, limit: int) -> bytes | None:
        """The request body, or None as soon as it exceeds `limit` bytes."""
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def submit(request: Request, action: Action) -> Response:
        config = state.config
        refused = auth(request, body_unread=True)
        if refused:
            return refused
        length = request.headers.get("content-length")
        if length is None and config.require_content_length:
            return error(
                411,
                "length_required",
                "A Content-Length header is required (chunked uploads are not accepted).",
                close=True,
            )
        too_large = f"The request body is larger than the limit of {config.max_body_bytes} bytes."
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return error(413, "payload_too_large", too_large, close=True)
        body = await read_body(request, config.max_body_bytes)
        if body is None:
            return error(413, "payload_too_large", too_large, close=True)
        # The rate limit counts a request as it arrives, before anything slow happens to it
        # (a slow answer taking its token later would let it squeeze in ahead of the next).
        wait = state.take_token(state.clock(), lambda: _prompt_of(body))
        if wait is not None:
            return rate_limited(wait)
        fault = await faults("submit", hashlib.sha256(body).hexdigest())
        if fault:
            return fault

        try:
            payload = json.loads(body, parse_constant=_refuse_constant)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return error(400, "invalid_json", f"The request body is not valid JSON: {exc}.")
        if not isinstance(payload, dict):
            return error(400, "invalid_request", "The request body must be a JSON object.")
        if "prompt" not in payload:
            return error(400, "invalid_request", "Missing required field `prompt`.")
        if not isinstance(payload["prompt"], str):
            return error(400, "invalid_request", "Field `prompt` must be a string.")
        media: dict[str, str] = {}
        for name in ("video", "image"):
            if payload.get(name) is None:
                continue
            url = _media_url(payload[name])
            if url is None:
                return error(
                    400,
                    "invalid_request",
                    f"Field `{name}` must be a string or an object with a string `url`.",
                )
            media[name] = url
        model = payload.get("model", config.models[0])
        duration = payload.get("duration")
        if not isinstance(model, str):
            return error(400, "invalid_request", "Field `model` must be a string.")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, (int, float))
        ):
            return error(400, "invalid_request", "Field `duration` must be an integer.")
        if model not in config.models:
            shown = model if len(model) <= 80 else model[:80] + "..."
            return error(
                404,
                "model_not_found",
                f"The model {shown!r} does not exist or your team does not have access to it.",
            )
        limits = limits_for(action, model)
        if limits.takes_video and "video" not in media:
            return error(400, "invalid_request", "Missing required field `video`.")

        taken = "video" if limits.takes_video else "image"
        resolved = await resolve_media(
            taken, media.get(taken), payload["prompt"], limits, root_url(request)
        )
        now = state.clock()
        job = plan_job(limits, model, payload, resolved, now)
        dropped = state.chance(
            config.p_drop_after_accept,
            "drop",
            job.input_key,
            state.occurrence("drop", job.input_key),
        )
        state.add_job(job, dropped=dropped)
        if config.accepted_answer_seconds > 0:
            await anyio.sleep(config.accepted_answer_seconds)
        answer = {"request_id": job.request_id}
        return _CutOffResponse(answer) if dropped else JSONResponse(answer)

    async def resolve_media(
        name: str, value: str | None, prompt: str, limits: Limits, root: str
    ) -> ResolvedInput:
        """The input of a submission: its `video` (checked against the operation's input
        length) or its still; a request with neither is keyed by its prompt."""
        if value is None:
            return ResolvedInput(prompt_key(prompt))
        if name == "video":
            known = own_result(value, root)
            if known is not None:
                return within_input_length(known, limits)
        resolve: Callable[..., ResolvedInput] = resolve_input if name == "video" else resolve_image
        config = state.config
        keep = config.max_drawn_input_bytes if config.pictures == "drawn" else 0
        args = (value, config.assumed_input_seconds, keep) if name == "video" else (value, keep)
        if len(value) > _THREAD_DECODE_CHARS:
            resolved = await anyio.to_thread.run_sync(resolve, *args)
        else:
            resolved = resolve(*args)
        return within_input_length(resolved, limits)

    def own_result(video: str, root: str) -> ResolvedInput | None:
        """A result URL of this emulator as an input: its job's output (length and frame size),
        or refused when it cannot be fetched now; None for any other video."""
        prefix = f"{root}/files/"
        if not video.startswith(prefix):
            return None
        name, _, query = video[len(prefix) :].partition("?")
        job = state.get_job(name.removesuffix(".mp4"))
        token = parse_qs(query).get("token", [""])[0]
        refusal = file_refusal(job, token, state.clock())
        if refusal is not None:
            return ResolvedInput(
                video, problem=f"Invalid video: the video URL cannot be fetched ({refusal[2]})"
            )
        assert job is not None
        return ResolvedInput(
            video, job.output_seconds, job.size, content=partial(job.mp4, state.config.pictures)
        )

    def plan_job(
        limits: Limits, model: str, payload: dict[str, Any], resolved: ResolvedInput, now: float
    ) -> Job:
        """Decide the outcome of an accepted submission from its checks and directives."""
        config = state.config
        prompt: str = payload["prompt"]
        directives = parse_directives(prompt)
        given = {name: value for name, value in payload.items() if value is not None}
        given["model"] = model
        problem: Problem | None = check_request(limits, given, config.max_prompt_chars)
        for message in (resolved.problem, directives.problem):
            if problem is None and message:
                problem = ("invalid_argument", message)
        attempt = state.attempt_of(prompt, resolved.key)
        outcome, code, message = "done", None, None
        if problem:
            outcome, (code, message) = "failed", problem
        elif directives.expired:
            outcome = "expired"
        elif directives.fail:
            outcome, code = "failed", directives.fail
        elif directives.fail_first and attempt == 0:
            outcome, code = "failed", directives.fail_first
        elif attempt == 0 and state.chance(
            config.p_first_attempt_unavailable, "first-attempt", prompt, resolved.key
        ):
            outcome, code = "failed", "service_unavailable"
        elif directives.moderated:
            outcome = "moderated"
        if code and not message:
            message = JOB_ERROR_MESSAGES.get(code, f"Video generation failed ({code}).")

        if directives.latency is not None:
            latency = directives.latency
        elif problem:
            latency = 0.0  # validation failures show on the first poll
        elif config.latency_jitter > 0:
            jitter = config.latency_jitter
            latency = config.latency * (1 + state.uniform(-jitter, jitter))
        else:
            latency = config.latency
        duration = payload.get("duration")
        if duration is None:
            duration = limits.default_duration
        output = cost = size = None
        if outcome in ("done", "moderated"):
            seconds = limits.output_seconds(resolved.seconds, duration)
            assert seconds is not None
            output = round(seconds, 3)
            cost = usage_ticks(output, config.usd_per_second)
            if limits.action == "generate":
                size = frame_size(
                    payload.get("aspect_ratio") or config.default_aspect_ratio,
                    payload.get("resolution") or config.default_resolution,
                )
            else:
                size = output_size(resolved.size)
        return Job(
            request_id="req_" + secrets.token_hex(12),
            model=model,
            prompt=prompt,
            duration=duration,
            input_key=resolved.key,
            created=now,
            latency=max(0.0, latency),
            outcome=outcome,
            token=secrets.token_urlsafe(16),
            error_code=code,
            error_message=message,
            output_seconds=output,
            cost_ticks=cost,
            action=limits.action,
            size=size,
            fields={k: v for k, v in payload.items() if k not in ("video", "image")},
            source=resolved.content if config.pictures == "drawn" and output else None,
            media={
                name: "string" if isinstance(payload[name], str) else "object"
                for name in ("video", "image")
                if payload.get(name) is not None
            },
        )

    def root_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def poll(request: Request) -> Response:
        refused = auth(request)
        if refused:
            return refused
        request_id = request.path_params["request_id"]
        job = state.get_job(request_id)
        # What the job is, not its random id, so that a rerun with the same seed meets the
        # same poll faults.
        subject = f"{job.input_key}|{job.prompt}" if job is not None else request_id
        fault = await faults("poll", subject)
        if fault:
            return fault
        if job is None:
            shown = request_id if len(request_id) <= 80 else request_id[:80] + "..."
            return error(404, "not_found", f"No video request with id {shown!r}.")
        state.count_poll(request_id)
        return JSONResponse(state.job_status(job, state.clock(), root_url(request)))

    def file_refusal(job: Job | None, token: str, now: float) -> tuple[int, str, str] | None:
        """Why a result URL serves no file at `now`, as (status, code, message); None if it does."""
        if job is None or not job.has_file or now < job.finished_at:
            return 404, "not_found", "No such file."
        if not hmac.compare_digest(token.encode(), job.token.encode()):
            return 403, "access_denied", "Access denied: the URL's token is not valid."
        if now > job.finished_at + state.config.url_ttl:
            return 403, "url_expired", "Request has expired: the URL is no longer valid."
        return None

    async def download(request: Request) -> Response:
        job = state.get_job(request.path_params["request_id"])
        refusal = file_refusal(job, request.query_params.get("token", ""), state.clock())
        if refusal is not None:
            return error(*refusal)
        assert job is not None
        data = await anyio.to_thread.run_sync(job.mp4, state.config.pictures)
        if request.method == "GET":
            state.count_download(job.request_id)
        headers = {
            "Content-Disposition": f'inline; filename="{job.request_id}.mp4"',
            "Cache-Control": "private, max-age=0",
        }
        if state.config.download_seconds <= 0 or request.method != "GET":
            return Response(data, media_type="video/mp4", headers=headers)
        return StreamingResponse(
            _slices(data, state.config.download_seconds),
            media_type="video/mp4",
            headers={**headers, "Content-Length": str(len(data))},
        )

    async def stats(request: Request) -> Response:
        refused = auth(request)
        return refused or JSONResponse(state.stats())

    async def reset(request: Request) -> Response:
        refused = auth(request, body_unread=True)
        if refused:
            return refused
        state.reset()
        return JSONResponse(state.stats())

    def submitter(action: Action) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await submit(request, action)

        return endpoint

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail), close=request.method != "GET")

    routes = [
        *(
            Route(
                f"{API_PREFIX}/{limits_for(action, DEFAULT_MODEL).route}",
                submitter(action),
                methods=["POST"],
            )
            for action in ACTIONS
        ),
        Route(f"{API_PREFIX}/videos/{{request_id}}", poll, methods=["GET"]),
        Route(f"{API_PREFIX}/_emulator/stats", stats, methods=["GET"]),
        Route(f"{API_PREFIX}/_emulator/reset", reset, methods=["POST"]),
        Route("/files/{request_id}.mp4", download, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.emulator = state
    return app
