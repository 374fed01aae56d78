"""The JSON library of the runs' results in Prefect's result storage (Prefect's `json`
serializer with `jsonlib="prefect_grok_video.result_json"`).

Prefect's JSON serializer turns a pydantic model into a dict of plain values first, then into
text: for a report of 10,000 rows that dict alone is about 25 MB, built at the moment the run
ends. `dumps` writes the same JSON straight from the model with pydantic. The serializer stays
Prefect's own `json` type, so any process with this package installed reads the results back
(Prefect imports the module named in the result's metadata): a downstream flow run, a script.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

__all__ = ["dumps", "loads"]


def dumps(obj: Any, default: Callable[[Any], Any] | None = None, **kwargs: Any) -> bytes:
    """`obj` as JSON bytes: a pydantic model in the `{"__class__", "data"}` form Prefect's
    serializer writes and reads, in one pass; anything else as `json.dumps` would."""
    model = type(obj)
    if isinstance(obj, BaseModel) and not model.__pydantic_generic_metadata__["origin"]:
        name = f"{model.__module__}.{model.__qualname__}".encode()
        return b'{"__class__": "%s", "data": %s}' % (name, obj.__pydantic_serializer__.to_json(obj))
    return json.dumps(obj, default=default, **kwargs).encode()


def loads(text: str | bytes, **kwargs: Any) -> Any:
    """JSON text as values (`object_hook` turns the `{"__class__", "data"}` form into models)."""
    return json.loads(text, **kwargs)
