"""Where results go: the output folder of a run (a local folder, a `file://` URL or a storage
URL), each row's file in it, and whether a file downloaded earlier is still whole."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import fsspec

from prefect_grok_video.inputs import is_storage_url
from prefect_grok_video.models import DownloadResult

__all__ = ["OutputFolder", "intact", "local_path"]


def local_path(location: str | os.PathLike[str]) -> Path:
    """The absolute local path of a path or `file://` URL (`~` expanded)."""
    text = os.fspath(location)
    if text[:7].lower() == "file://":
        text = fsspec.core.strip_protocol(text)
    return Path(text).expanduser().absolute()


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
        return fs.exists(path) and fs.size(path) == result.size
    path = Path(result.path)
    if not path.is_file() or path.stat().st_size != result.size:
        return False
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest() == result.sha256
