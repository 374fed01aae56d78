"""Reading a manifest: a file (CSV, JSON, JSONL, YAML; local or any storage URL fsspec reads)
or inline rows, into raw rows, before any row is checked.

Only a manifest that cannot be read as a whole (not found, unknown format, malformed
JSON/YAML/CSV) raises `ManifestError`; a row that cannot be read comes back empty with its
problem, so that one bad row never hides the others.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
import yaml

from prefect_grok_video.display import kind_of, shown
from prefect_grok_video.errors import ManifestError
from prefect_grok_video.inputs import STORAGE_PROTOCOLS
from prefect_grok_video.manifest.rows import (
    FIELDS,
    REQUIRED,
    ManifestRow,
    RawRow,
    RowProblem,
    closest,
    did_you_mean,
)

__all__ = ["FORMATS", "read_rows"]

#: File extension -> manifest format.
FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
}
#: Largest CSV cell read (the csv module's default of 128 KiB refuses small data URLs).
_CSV_FIELD_LIMIT = 2**31 - 1


def read_rows(
    source: str | os.PathLike[str] | Sequence[ManifestRow | Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], str | None, str]:
    """Raw rows, the base folder for relative paths, and a description; ManifestError if unreadable.

    Each row is a `RawRow` (a dict with lower-cased keys); rows that could not be read as an
    object come back empty with their problem, so that one bad row never hides the others.
    """
    if isinstance(source, (str, os.PathLike)):
        return _read_file(os.fspath(source))
    if isinstance(source, (bytes, bytearray, Mapping)) or not isinstance(source, Sequence):
        kind = "a mapping" if isinstance(source, Mapping) else type(source).__name__
        raise ManifestError(
            f"a manifest is a path, a storage URL or a list of rows, got {kind}: "
            "wrap a single row in a list"
        )
    rows: list[dict[str, Any]] = [raw_row(item) for item in source]
    if not rows:
        raise ManifestError("the inline manifest has no rows: give at least one row")
    return rows, None, f"inline ({len(rows)} row{'s' * (len(rows) != 1)})"


def _read_file(text: str) -> tuple[list[dict[str, Any]], str | None, str]:
    described = _redact_userinfo(text)
    if not text.strip():
        raise ManifestError("manifest not found: the path is empty")
    scheme, sep, rest = text.partition("://")
    remote = False
    if sep:
        protocol = scheme.lower()
        if protocol not in STORAGE_PROTOCOLS:
            raise ManifestError(
                f"unsupported manifest URL scheme {scheme!r} ({described}): use a local path or a "
                "storage URL such as s3://, gs://, az:// or memory://"
            )
        remote = protocol not in ("file", "local")
    if remote:
        parent = rest.rsplit("/", 1)[0] if "/" in rest.rstrip("/") else ""
        base_dir = f"{scheme}://{parent}"
        suffix = PurePosixPath(rest).suffix.lower()
        data = _read_remote(text, described)
    else:
        path = Path(fsspec.core.strip_protocol(text) if sep else text).expanduser().absolute()
        base_dir, suffix = str(path.parent), path.suffix.lower()
        data = _read_local(path)
    where = described if remote else str(path)  # errors name the absolute path of a local file
    fmt = FORMATS.get(suffix)
    if fmt is None:
        accepted = ", ".join(FORMATS)
        found = f"'{suffix}'" if suffix else "no extension"
        raise ManifestError(
            f"unsupported manifest format ({found}) for {where}: name it with one of {accepted}"
        )
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"the manifest {where} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}): save it as UTF-8"
        ) from None
    if not content.strip():
        raise ManifestError(f"the manifest {where} is empty: it has no rows")
    rows = _PARSERS[fmt](content, where)
    if not rows:
        raise ManifestError(f"the manifest {where} has no rows")
    return rows, base_dir, described


def _read_local(path: Path) -> bytes:
    try:
        if path.is_dir():
            raise ManifestError(
                f"the manifest {path} is a folder: give the path of a manifest file"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {path}") from None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None


def _read_remote(url: str, where: str) -> bytes:
    try:
        fs, path = fsspec.core.url_to_fs(url)
        info = fs.info(path)
        if info.get("type") == "directory":
            raise ManifestError(
                f"the manifest {where} is a folder: give the URL of a manifest file"
            )
        with fs.open(path, "rb") as f:
            content: bytes = f.read()
            return content
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {where}") from None
    except (ImportError, OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {where}: {exc}") from None


def _parse_csv(content: str, where: str) -> list[dict[str, Any]]:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(content, newline=""))
    header: list[str] | None = None
    header_problems: list[RowProblem] = []
    rows: list[dict[str, Any]] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line (or one of empty cells)
            if header is None:
                header = [cell.strip().lower() for cell in cells]
                header_problems = _column_problems(header, where)
                continue
            values: dict[str, str] = {}
            for name, cell in zip(header, cells, strict=False):
                if name:
                    values[name] = cell.strip()
            problems = list(header_problems)
            extra = [cell for cell in cells[len(header) :] if cell.strip()]
            if extra:
                example = (
                    '"data:video/mp4;base64,..."'
                    if any(cell.strip().lower().startswith("data:") for cell in cells)
                    else '"the sun rises, then sets"'
                )
                problems.insert(
                    0,
                    RowProblem(
                        "row",
                        f"has {len(cells)} values but the header has {len(header)} columns: "
                        f"quote values that contain commas, e.g. {example}",
                    ),
                )
            rows.append(RawRow(values, problems, columns=[c for c in header if c]))
    except csv.Error as exc:
        raise ManifestError(
            f"the manifest {where} is not valid CSV: {exc} (line {reader.line_num})"
        ) from None
    if header is not None and not rows:
        raise ManifestError(f"the manifest {where} has a header but no rows")
    return rows


def _column_problems(header: list[str], where: str) -> list[RowProblem]:
    """The problems every row gets from the header: required columns missing, unknown ones."""
    for name in FIELDS:
        if header.count(name) > 1:
            raise ManifestError(
                f"the manifest {where} has {header.count(name)} {name!r} columns: keep one"
            )
    columns = [name for name in header if name]
    problems = []
    for name in REQUIRED:
        if name not in header:
            hint = did_you_mean(name, columns)
            problems.append(
                RowProblem(
                    name,
                    f"missing: the manifest has no {name!r} column "
                    f"(columns: {', '.join(shown(c) for c in columns)}){hint}",
                )
            )
    return problems + _unknown_names(columns, "column")


def _unknown_names(names: Iterable[str], word: str) -> list[RowProblem]:
    """A problem for each column or key that is no field: its value would go unused, unseen."""
    known = ", ".join(FIELDS)
    problems = []
    for name in names:
        if name not in FIELDS:
            match = closest(name, FIELDS)
            fix = f"did you mean {match!r}?" if match else "rename it to one of them or remove it"
            message = f"unknown {word} (known {word}s: {known}): {fix}"
            problems.append(RowProblem(shown(name, 40), message))
    return problems


def _parse_json(content: str, where: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"the manifest {where} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise ManifestError(f"the manifest {where} is nested too deeply to read") from None
    return [raw_row(item) for item in _row_list(data, where, "JSON")]


def _parse_jsonl(content: str, where: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    # Split on newlines only: str.splitlines would also split on U+2028 inside JSON strings.
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})"
            rows.append(RawRow(problems=[RowProblem("row", problem)]))
        except RecursionError:
            problem = f"line {number} is nested too deeply to read"
            rows.append(RawRow(problems=[RowProblem("row", problem)]))
        else:
            rows.append(raw_row(item))
    return rows


def _parse_yaml(content: str, where: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(content)
    except yaml.MarkedYAMLError as exc:
        # Not str(exc): it quotes the offending line, which may be part of a data URL.
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "malformed"
        mark = exc.problem_mark or exc.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ManifestError(f"the manifest {where} is not valid YAML: {what}{at}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a value YAML reads as a timestamp but is no date, such as 2024-13-45.
        reason = shown(str(exc))
        raise ManifestError(f"the manifest {where} is not valid YAML: {reason}") from None
    if data is None:
        raise ManifestError(f"the manifest {where} is empty: it has no rows")
    return [raw_row(item) for item in _row_list(data, where, "YAML")]


_PARSERS = {"csv": _parse_csv, "json": _parse_json, "jsonl": _parse_jsonl, "yaml": _parse_yaml}


def _row_list(data: Any, where: str, kind: str) -> list[Any]:
    """The rows of a parsed JSON/YAML document: a list, or an object's `rows` list."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping) and "rows" in data:
        if isinstance(data["rows"], list):
            return data["rows"]
        raise ManifestError(
            f"'rows' in the manifest {where} must be a list of rows, got {kind_of(data['rows'])}"
        )
    if isinstance(data, Mapping):
        keys = {str(key).strip().lower() for key in data}
        if keys & set(REQUIRED):
            raise ManifestError(
                f"the manifest {where} is a single row, not a list of rows: put it in a list, "
                "or under a 'rows' key"
            )
        names = ", ".join(shown(str(key), 40) for key in list(data)[:8])
        raise ManifestError(
            f"the manifest {where} must be a {kind} list of rows or an object with a 'rows' "
            f"list, got an object with keys {names}"
        )
    raise ManifestError(
        f"the manifest {where} must be a {kind} list of rows or an object with a 'rows' list, "
        f"got {kind_of(data)}"
    )


def raw_row(item: Any) -> RawRow:
    """A row read from a file or given inline: an object's keys lower-cased, else a problem."""
    if isinstance(item, ManifestRow):
        # With the keys that are no field, to report them; a field left empty was not given.
        item = item.model_dump(exclude_none=True)
    if isinstance(item, Mapping):
        values: dict[str, Any] = {}
        for key, value in item.items():
            name = str(key).strip().lower()
            if name not in values or key == name:  # an exact key wins over a differently-cased one
                values[name] = value
        return RawRow(values, _unknown_names(values, "key"))
    return RawRow(
        problems=[
            RowProblem(
                "row",
                f"is {kind_of(item)}, not an object: write each row as an object with a "
                "'prompt' key (and 'video', 'action', ... as the row needs)",
            )
        ]
    )


def _redact_userinfo(url: str) -> str:
    """`url` without a password in its authority (sftp://user:secret@host/...)."""
    return re.sub(r"^([A-Za-z][\w+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", url)
