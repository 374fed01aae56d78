"""Manifests: the rows of clips and prompts to extend, read and checked before anything is paid.

A manifest is a CSV, JSON, JSONL or YAML file (a local path or any storage URL fsspec reads,
such as ``s3://bucket/m.csv`` or ``memory://m.csv``), or an inline list of rows (what the
Prefect UI renders as a form). Every row has these fields:

==========  ========  ===================================================================
field       needed    meaning
==========  ========  ===================================================================
id          no        unique name of the row and of its output file ``<id>.mp4``; ``row-<n>``
video       yes       the clip: a path (relative to the manifest's folder), storage URL,
                      http(s) URL, data URL or ``file_id:<id>`` (see `prefect_grok_video.inputs`)
prompt      yes       what happens next in the video
duration    no        seconds of new video, a whole number from 2 to 10 (default 6)
model       no        model id (default: the caller's, ``grok-imagine-video``)
==========  ========  ===================================================================

A column or key that is none of these makes its row invalid, named with the closest field: a
misspelt ``duraton`` would otherwise go unused and the row be paid for with the default.

`load_manifest` reads the rows and checks each one completely (including the MP4 preflight of
local and storage files, in a thread pool): a good row becomes a `ValidRow`, a bad one an
`InvalidRow` listing every problem found, and the good rows go on. Only a manifest that cannot
be read as a whole (not found, unknown format, malformed JSON/YAML/CSV) raises `ManifestError`.
No message, description or repr here ever holds the body of a data URL.

The modules: `rows` (the row types, and the fields, defined once), `reading` (files and inline
rows into raw rows) and `checking` (raw rows into valid and invalid rows).
"""

from prefect_grok_video.manifest.checking import MAX_ID_CHARS, load_manifest
from prefect_grok_video.manifest.reading import FORMATS, read_rows
from prefect_grok_video.manifest.rows import (
    DEFAULT_DURATION,
    FIELDS,
    InvalidRow,
    Manifest,
    ManifestRow,
    RawRow,
    RowProblem,
    ValidRow,
)

__all__ = [
    "DEFAULT_DURATION",
    "FIELDS",
    "FORMATS",
    "MAX_ID_CHARS",
    "InvalidRow",
    "Manifest",
    "ManifestRow",
    "RawRow",
    "RowProblem",
    "ValidRow",
    "load_manifest",
    "read_rows",
]
