"""A Prefect API that goes away: telling the operator once, and how long to wait for it.

A Prefect server restarts, or its database does, or the network between a worker and it breaks;
each process of a run then meets failed calls, and Prefect's own client retries some of them
for about a minute. What needs the API and can wait (the parent of a chunked run watching its
chunk runs, the submit gate asking for shared slots) waits, up to `limit` seconds
(`GROK_VIDEO_SERVER_OUTAGE_TIMEOUT`), and `ApiOutage` says so in one warning per outage and one
line when the API is back, instead of a line (or a traceback) per failed call. Answers of a busy
server for less than `quiet_seconds` are not an outage worth a line.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx

from prefect_grok_video.logs import Logger
from prefect_grok_video.pacing import Clock

__all__ = ["DEFAULT_OUTAGE_SECONDS", "ApiOutage", "is_out_of_reach"]

#: Seconds a run waits for an unreachable Prefect API by default.
DEFAULT_OUTAGE_SECONDS = 900.0
#: HTTP answers of a Prefect server that is restarting, overloaded or behind a broken proxy.
_OUT_OF_REACH_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_out_of_reach(error: BaseException) -> bool:
    """Whether `error` means the Prefect API is away (not that the call was wrong)."""
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in _OUT_OF_REACH_STATUSES
    return isinstance(error, (httpx.TransportError, OSError))


class ApiOutage:
    """The Prefect API's absences as one part of a run sees them: one warning when it has been
    away for `quiet_seconds`, one line when it is back, and how long it has been away.

    `waiting` says, in the warning, what the run does meanwhile."""

    def __init__(
        self,
        logger: Logger,
        limit: float = DEFAULT_OUTAGE_SECONDS,
        *,
        waiting: str,
        quiet_seconds: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._logger = logger
        self.limit = limit
        self._waiting = waiting
        self._quiet = quiet_seconds
        self._clock = clock
        self._since: float | None = None
        self._told = False
        #: When the API last came back (clocks of waiting runs restart from there).
        self.back_at: datetime | None = None

    def failed(self, error: BaseException) -> None:
        """A call did not reach the API."""
        now = self._clock()
        if self._since is None:
            self._since = now
        if not self._told and now - self._since >= self._quiet:
            self._told = True
            self._logger.warning(
                "The Prefect API is out of reach (%s): %s, for up to %.0f s "
                "(GROK_VIDEO_SERVER_OUTAGE_TIMEOUT)", _short(error), self._waiting, self.limit,
            )  # fmt: skip

    def reached(self) -> None:
        """A call reached the API."""
        if self._since is None:
            return
        if self._told:
            self._logger.info("The Prefect API answers again, after %.0f s", self.away_for)
        self._since, self._told = None, False
        self.back_at = datetime.now(timezone.utc)

    @property
    def away_for(self) -> float:
        """Seconds since the API went away (0 while it answers)."""
        return 0.0 if self._since is None else self._clock() - self._since

    @property
    def exceeded(self) -> bool:
        """Whether the API has been away for longer than `limit`."""
        return self.away_for > self.limit

    def since(self, moment: datetime) -> float:
        """Seconds since `moment`, or since the API came back if that is later."""
        start = max(moment, self.back_at) if self.back_at else moment
        return (datetime.now(timezone.utc) - start).total_seconds()


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__
