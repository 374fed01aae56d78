"""How a run's result is kept in Prefect's result storage: Prefect's `json` serializer with a
JSON library that writes a model in one pass (`prefect_grok_video.result_json`)."""

from __future__ import annotations

from prefect.serializers import JSONSerializer

__all__ = ["RESULT_SERIALIZER"]

#: The serializer of every flow's result (and a chunk run's report, read by its parent).
RESULT_SERIALIZER = JSONSerializer(jsonlib="prefect_grok_video.result_json")
