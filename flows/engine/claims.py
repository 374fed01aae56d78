"""Claims: the record that a paid submission is on its way, so no other process pays for it too.

A submit task's result (its request_id) is cached under a key made of what the job is, but only
once the task ends. Before that there are two ways to pay twice:

- the process dies between sending the request and its result being written (a worker's
  machine lost, a SIGKILL): a rerun finds no result and submits again;
- two processes run the same rows at once (a chunk run started again while the first one is
  still alive somewhere): both find no result, both submit.

So right before its request goes out, a submission writes a *claim* beside where its result
will be (`<key>.claim` in the same result storage, which every worker shares). Whoever finds a
claim and no result does not submit: it waits for the holder's result, and if the holder is
gone without one (its process is dead, or the claim is older than its submission could take),
the row is `unknown`, as when an answer never came, since a job may exist and be billed.

On a local or shared folder (`LocalFileSystem`, Prefect's default) the claim is created
exclusively (`O_EXCL`), so of two processes exactly one submits. On other storage blocks (a
bucket) it is written and read back, which leaves a race of the storage's own latency between
two processes that claim the same job at the same instant.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from prefect.results import ResultStore

__all__ = ["Claim", "ClaimedElsewhere", "HolderGoneError", "SubmitClaims"]

#: The holders of the claims this process is submitting under right now.
_submitting: set[str] = set()
#: Seconds between looks at a claim held by another process.
CLAIM_POLL_SECONDS = 0.5
#: Added to a submission's timeouts to get how long its claim holds without a result.
CLAIM_MARGIN_SECONDS = 60.0
#: Seconds after which an empty claim file is taken for one whose writer died before writing
#: it (a claim is written and synced within milliseconds of being created).
UNWRITTEN_CLAIM_SECONDS = 5.0


@dataclass(frozen=True)
class Claim:
    """Who is submitting a job, and until when that can take."""

    holder: str
    flow_run_id: str | None
    host: str
    pid: int
    #: The process's start time (ticks since boot, from /proc), so a reused pid is not taken
    #: for the holder.
    pid_started: int | None
    row_id: str | None
    #: When the request last went out (each retry of the submission renews the claim).
    sent_at: datetime
    #: The latest moment the holder can still be waiting for an answer.
    expires_at: datetime
    released: bool = False

    def to_json(self) -> bytes:
        data = asdict(self)
        data["sent_at"] = self.sent_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, content: bytes) -> Claim:
        data: dict[str, Any] = json.loads(content)
        data["sent_at"] = datetime.fromisoformat(data["sent_at"])
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return cls(**data)

    def gone(self) -> bool:
        """Whether the holder can no longer record a result: its process is dead (known on
        its own host), or the claim outlived its submission's timeouts."""
        if self.released:
            return True
        if datetime.now(timezone.utc) > self.expires_at:
            return True
        if self.host == socket.gethostname():
            if self.pid == os.getpid() and self.pid_started == _process_start(self.pid):
                return self.holder not in _submitting  # this process: is it still sending?
            return _process_start(self.pid) != self.pid_started
        return False

    def describe(self) -> str:
        where = f"flow run {self.flow_run_id}" if self.flow_run_id else "a process"
        return f"{where} (host {self.host}, pid {self.pid}) at {self.sent_at:%Y-%m-%d %H:%M:%S} UTC"


class ClaimedElsewhere(Exception):
    """Another process holds the claim; `claim` says who."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(f"claimed by {claim.describe()}")
        self.claim = claim


def _process_start(pid: int) -> int | None:
    """When process `pid` started (ticks since boot), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:  # no /proc (macOS): whether the pid exists is all there is to know
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return -1
        return -1
    return int(stat.rsplit(")", 1)[1].split()[19])


class SubmitClaims:
    """The claim on one job: `take` before each send, `release` when refused, `finish` when
    the submission is over in this process."""

    def __init__(self, store: ResultStore, key: str, *, row_id: str | None,
                 flow_run_id: str | None, hold_seconds: float) -> None:  # fmt: skip
        self._storage: WritableFileSystem | None = store.result_storage
        self._store = store
        self._key = key
        self._path = f"{key}.claim"
        self._row_id = row_id
        self._flow_run_id = flow_run_id
        self._hold = hold_seconds + CLAIM_MARGIN_SECONDS
        self._holder = uuid.uuid4().hex
        self._held = False

    def _new_claim(self) -> Claim:
        now = datetime.now(timezone.utc)
        pid = os.getpid()
        return Claim(
            holder=self._holder, flow_run_id=self._flow_run_id, host=socket.gethostname(),
            pid=pid, pid_started=_process_start(pid), row_id=self._row_id, sent_at=now,
            expires_at=now + timedelta(seconds=self._hold),
        )  # fmt: skip

    def _local_path(self) -> Path | None:
        if isinstance(self._storage, LocalFileSystem):
            return Path(self._storage.basepath or ".").expanduser() / self._path
        return None

    async def read(self) -> Claim | None:
        """The claim on this job, if any."""
        local = self._local_path()
        try:
            if local is not None:
                content = await anyio.Path(local).read_bytes()
            elif self._storage is not None:
                content = await self._storage.read_path(self._path)
            else:
                return None
        except (FileNotFoundError, ValueError):  # missing; Prefect's blocks raise ValueError
            return None
        if not content:
            return None
        try:
            return Claim.from_json(content)
        except (ValueError, TypeError, KeyError):  # a claim being written right now
            return None

    async def take(self, *, overwrite: bool = False) -> None:
        """Claim the job before its request goes out (again: renewed on each retry).

        Raises `ClaimedElsewhere` when another process holds it; `overwrite` takes it anyway
        (a refresh pays for the job again on purpose)."""
        claim = self._new_claim()
        if self._held or overwrite:
            await self._write(claim)
            self._held = True
            _submitting.add(self._holder)
            return
        local = self._local_path()
        if local is not None:
            await anyio.to_thread.run_sync(self._create_exclusively, local, claim)
        else:
            held = await self.read()
            if held is not None and not held.released:
                raise ClaimedElsewhere(held)
            await self._write(claim)
            back = await self.read()
            if back is not None and back.holder != self._holder:
                raise ClaimedElsewhere(back)
        self._held = True
        _submitting.add(self._holder)

    def finish(self) -> None:
        """The submission is over in this process (answered, refused or cut off): a claim
        it leaves without a result is gone, not still being sent."""
        _submitting.discard(self._holder)

    def _create_exclusively(self, path: Path, claim: Claim) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    held = Claim.from_json(path.read_bytes())
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                except (ValueError, TypeError, KeyError):
                    # Being written by its holder, or left empty by one that died before it
                    # wrote it, and so before it sent anything: then it is free.
                    if time.time() - path.stat().st_mtime < UNWRITTEN_CLAIM_SECONDS:
                        time.sleep(0.05)
                    else:
                        path.unlink(missing_ok=True)
                    continue
                if held.released:
                    path.unlink(missing_ok=True)
                    continue
                raise ClaimedElsewhere(held) from None
            with os.fdopen(descriptor, "wb") as file:
                file.write(claim.to_json())
                file.flush()
                os.fsync(file.fileno())
            return

    async def _write(self, claim: Claim) -> None:
        local = self._local_path()
        if local is not None:
            await anyio.to_thread.run_sync(_write_durably, local, claim.to_json())
        elif self._storage is not None:
            await self._storage.write_path(self._path, claim.to_json())

    async def release(self) -> None:
        """Give the claim up: the submission was refused, so no job exists and a retry (or
        another process) may submit."""
        if not self._held:
            return
        self._held = False
        local = self._local_path()
        if local is not None:
            await anyio.Path(local).unlink(missing_ok=True)
        elif self._storage is not None:
            released = Claim(**{**asdict(self._new_claim()), "released": True})
            await self._storage.write_path(self._path, released.to_json())

    async def outcome_elsewhere(self, claim: Claim) -> Any | None:
        """Wait for the holder of `claim` to record its result, and return it; None when the
        holder is gone without one (or gives the claim up: then the caller may claim it)."""
        while True:
            if await self._store.aexists(self._key):
                return (await self._store.aread(self._key)).result
            current = await self.read()
            if current is None or current.released:
                return None
            if current.gone():
                raise HolderGoneError(current)
            await asyncio.sleep(CLAIM_POLL_SECONDS)


class HolderGoneError(Exception):
    """The holder of a claim is gone without recording a result: a job may exist."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(claim.describe())
        self.claim = claim


def _write_durably(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
