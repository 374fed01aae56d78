"""Run the emulator app with uvicorn in a background thread, on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from prefect_grok_video.emulator.app import API_PREFIX, create_app, quiet_deliberate_drops
from prefect_grok_video.emulator.config import EmulatorConfig
from prefect_grok_video.emulator.state import EmulatorState

__all__ = ["EmulatorServer"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server, checking for exit every 10 ms instead of every 100 ms (fast stops)."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)


def _loopback(host: str) -> str:
    """`host` if it is a loopback address ("localhost" becomes 127.0.0.1); refuse anything else."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"the emulator binds loopback addresses only (127.0.0.1, ::1), not {host!r}"
        )
    return host


class EmulatorServer:
    """A real HTTP emulator of the Grok video API on 127.0.0.1, served from a background thread.

    >>> with EmulatorServer(EmulatorConfig(latency=0.2)) as server:  # doctest: +SKIP
    ...     httpx.get(f"{server.base_url}/videos/req_x", headers=server.headers)
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
        log_level: str = "warning",
    ) -> None:
        self.host = _loopback(host)
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self.app = create_app(self.state)
        self._requested_port = port
        self._access_log = access_log
        self._log_level = log_level
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    # -- addresses ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. `http://127.0.0.1:8123` (result files live under `/files`)."""
        if self.port is None:
            raise RuntimeError("the emulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """API base URL, e.g. `http://127.0.0.1:8123/grok/v1` (set GROK_VIDEO_BASE_URL to it)."""
        return self.url + API_PREFIX

    @property
    def api_key(self) -> str:
        """The bearer token this emulator accepts."""
        return self.state.config.api_key

    @property
    def headers(self) -> dict[str, str]:
        """An `Authorization` header with the accepted key."""
        return {"Authorization": f"Bearer {self.api_key}"}

    def reconfigure(self, **changes: Any) -> EmulatorConfig:
        """Change knobs while running (jobs and counters are kept); return the new config."""
        self.config = self.state.config.replace(**changes)
        self.state.reconfigure(self.config)
        return self.config

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Bind the port and serve from a daemon thread; return once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already started")
        quiet_deliberate_drops()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only disables Nagle on sockets whose proto says TCP,
        # and without that every keep-alive answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)  # hundreds of concurrent clients connect at once in benchmarks
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            access_log=self._access_log,
            # uvicorn's own logging set-up only when logging requests (the CLI); otherwise its
            # loggers propagate to the application's (pytest captures them).
            log_config=uvicorn.config.LOGGING_CONFIG if self._access_log else None,
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=self._run, name=f"grok-video-emulator:{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the emulator failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start in time")
            time.sleep(0.002)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self, *, wait: bool = True) -> None:
        """Stop serving and wait for the thread (open connections are closed).

        `wait=False` only asks the server to exit, so that several can wind down together; a
        later `stop()` waits.
        """
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if not wait:
            return
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.port is not None else "not started"
        return f"EmulatorServer({where})"
