"""How a run's report is kept in Prefect's result storage.

Prefect's JSON serializer turns a pydantic model into a dict of plain values first, then into
text: for a report of 10,000 rows that dict alone is about 25 MB, built at the moment the run
ends. `ModelJSONSerializer` writes the same JSON straight from the model with pydantic, so a
run's memory at its end grows with the JSON's size only, and any JSON reader sees what Prefect's
own serializer would have written.
"""

from __future__ import annotations

from typing import Any

from prefect.serializers import JSONSerializer
from prefect.utilities.importtools import to_qualified_name
from pydantic import BaseModel, Field

__all__ = ["ModelJSONSerializer"]


class ModelJSONSerializer(JSONSerializer[Any]):
    """Prefect's JSON serializer, but a pydantic model is written by pydantic in one pass.

    It reads back what Prefect's `json` serializer reads (the `{"__class__", "data"}` form of
    a model), so a result written by either is read by this one.
    """

    type: str = Field(default="grok-video-json", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, BaseModel) or type(obj).__pydantic_generic_metadata__["origin"]:
            return super().dumps(obj)
        name = to_qualified_name(type(obj)).encode()
        return b'{"__class__": "%s", "data": %s}' % (name, obj.__pydantic_serializer__.to_json(obj))
