"""Where results go: the output folder of a run (a local folder, a `file://` URL or a storage
URL), each row's file in it, and whether a file downloaded earlier is still whole."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import fsspec

from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.models import DownloadResult

__all__ = ["OutputFolder", "intact", "local_path", "write_whole"]


def local_path(location: str | os.PathLike[str]) -> Path:
    """The absolute local path of a path or `file://` URL (`~` expanded)."""
    text = os.fspath(location)
    if text[:7].lower() == "file://":
        text = fsspec.core.strip_protocol(text)
    return Path(text).expanduser().absolute()


def write_whole(target: str, *parts: bytes | Iterable[bytes]) -> str:
    """Write `parts` one after another as the file `target` (a path, a `file://` URL or a
    storage URL), whole or not at all: a local file is written beside it and renamed, a
    bucket's object appears whole. Parts are written as they are, never joined in memory."""
    if is_storage_url(target):
        with fsspec.open(target, "wb") as file:
            _write_parts(file, parts)
        return target
    path = local_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(partial, "wb") as file:
            _write_parts(file, parts)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return str(path)


def _write_parts(file: BinaryIO, parts: tuple[bytes | Iterable[bytes], ...]) -> None:
    for part in parts:
        if isinstance(part, bytes):
            file.write(part)
        else:
            file.writelines(part)


@dataclass(frozen=True)
class OutputFolder:
    """The folder results are written to, as `<root>/<name>`; never outside it."""

    #: An absolute local path, or a storage URL without a trailing slash.
    root: str
    remote: bool

    @classmethod
    def parse(cls, output: str | os.PathLike[str]) -> OutputFolder:
        """The folder `output` names: a path, a `file://` URL or a storage URL (`s3://…`)."""
        text = os.fspath(output)
        if is_storage_url(text):
            return cls(text.rstrip("/"), remote=True)
        return cls(str(local_path(text).resolve()), remote=False)

    def destination(self, name: str) -> str:
        """Where the file `name` goes; `ValueError` if it would land outside the folder."""
        if self.remote:
            return f"{self.root}/{name}"
        path = Path(self.root, name).resolve()
        if path.parent != Path(self.root):
            raise ValueError(f"{name!r} would be written outside {self.root}")
        return str(path)


def intact(result: DownloadResult) -> bool:
    """Whether a downloaded file is still there with its size (and, when local, its sha256)."""
    if is_storage_url(result.path):
        fs, path = fsspec.core.url_to_fs(result.path)
        return bool(fs.exists(path) and fs.size(path) == result.size)
    path = Path(result.path)
    if not path.is_file() or path.stat().st_size != result.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest() == result.sha256
