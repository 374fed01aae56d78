"""`grok-video` with every HTTP request of its process counted, for the per-row profile.

    python benchmarks/counting.py COUNTS.json run MANIFEST ...   # as `grok-video run MANIFEST ...`

At exit COUNTS.json maps `METHOD /route` to a count: Prefect's API as `prefect: POST
/task_runs/{id}/set_state`, the video service as `service: GET /videos/{id}` (ids in paths
become `{id}`, queries are left out). Events travel on one websocket, not as requests: the
profile counts them in the server's database instead.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from prefect_grok_video.cli import main

#: A UUID or the emulator's `req_<hex>` request id, as a path segment (or a file's stem).
_ID = re.compile(
    r"(?<=/)([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|req_[0-9a-f]+)"
)


def route(request: httpx.Request, prefect_api: str) -> str:
    """`prefect: METHOD /path` or `service: METHOD /path`, ids replaced by `{id}`."""
    url = str(request.url.copy_with(query=None))
    if prefect_api and url.startswith(prefect_api):
        where, path = "prefect", url[len(prefect_api) :]
    else:
        where, path = "service", request.url.path.removeprefix("/grok/v1")
    return f"{where}: {request.method} {_ID.sub('{id}', path)}"


def count_requests(counts: Counter[str]) -> None:
    """Count every request that any httpx client of this process sends."""
    prefect_api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    for client in (httpx.Client, httpx.AsyncClient):
        original = client.send

        def send(self: Any, request: httpx.Request, *args: Any, _send: Any = original,
                 **kwargs: Any) -> Any:  # fmt: skip
            counts[route(request, prefect_api)] += 1
            return _send(self, request, *args, **kwargs)

        client.send = send  # type: ignore[method-assign]


if __name__ == "__main__":
    counts: Counter[str] = Counter()
    destination = Path(sys.argv[1])
    atexit.register(lambda: destination.write_text(json.dumps(counts, indent=1, sort_keys=True)))
    count_requests(counts)
    raise SystemExit(main(sys.argv[2:]))
